using MoCo.Actors.Collectives.Nccl;

namespace MoCo.Actors.Tests.Nccl;

/// <summary>Probe results for hosts we do not have, built from the same records the real probe fills.</summary>
internal static class ProbeResults
{
    public static NativeLibraryLoad Loaded(string name)
    {
        // Any non-zero handle: the result only reports it, nothing is called through it.
        return new NativeLibraryLoad(new IntPtr(1), name, [name], []);
    }

    public static NativeLibraryLoad Absent(IReadOnlyList<string> names)
    {
        return new NativeLibraryLoad(IntPtr.Zero, null, names, names.Select(_ => "not found").ToList());
    }

    public static NcclProbeResult Host(int cudaDevices, bool cudaRuntime, bool nccl, NcclVersion? version = null)
    {
        return new NcclProbeResult(
            cudaDevices,
            null,
            cudaRuntime ? Loaded("libcudart.so.12") : Absent(NativeLibraries.CudaRuntimeNames),
            nccl ? Loaded("libnccl.so.2") : Absent(NativeLibraries.NcclNames),
            nccl ? version ?? new NcclVersion(2, 21, 5) : null,
            null);
    }
}
