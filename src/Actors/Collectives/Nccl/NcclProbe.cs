using System.Runtime.InteropServices;
using TorchSharp;

namespace MoCo.Actors.Collectives.Nccl;

/// <summary>
/// Looks, once at start-up, for what the NCCL data plane needs: CUDA devices (through TorchSharp), libcudart, and libnccl
/// and its version. Never throws: what is missing is in the result, with a one-line <see cref="NcclProbeResult.Message"/>.
/// </summary>
public static class NcclProbe
{
    /// <summary>Probes this process's host.</summary>
    public static NcclProbeResult Run()
    {
        var (devices, cudaProblem) = CudaDevices();
        var nccl = NativeLibraries.Nccl;
        NcclVersion? version = null;
        string? versionProblem = null;
        if (nccl.IsLoaded)
        {
            try
            {
                var result = NcclNative.ncclGetVersion(out var code);
                if (result == NcclResult.Success && code > 0)
                {
                    version = NcclVersion.FromCode(code);
                }
                else
                {
                    versionProblem = result == NcclResult.Success ? $"it reported version code {code}" : NcclNative.Describe(result, IntPtr.Zero);
                }
            }
            catch (EntryPointNotFoundException e)
            {
                versionProblem = $"{nccl.LoadedName} has no ncclGetVersion ({e.Message}): not an NCCL 2 library";
            }
        }

        return new NcclProbeResult(devices, cudaProblem, NativeLibraries.CudaRuntime, nccl, version, versionProblem);
    }

    private static (int Devices, string? Problem) CudaDevices()
    {
        try
        {
            return (torch.cuda.is_available() ? torch.cuda.device_count() : 0, null);
        }
        catch (Exception e) when (e is ExternalException or InvalidOperationException or NotSupportedException or DllNotFoundException or EntryPointNotFoundException)
        {
            return (0, $"{e.GetType().Name}: {e.Message}");
        }
    }
}
