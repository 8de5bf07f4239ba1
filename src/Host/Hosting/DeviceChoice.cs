using MoCo.Host.Configuration;
using MoCo.Model.Training;
using TorchSharp;

namespace MoCo.Host.Hosting;

/// <summary>
/// The start-up decision of where this process's workers compute, from <c>moco.host.device</c> and what libtorch sees:
/// one line saying what was chosen and why, or a <see cref="ConfigurationError"/> naming what is missing.
/// </summary>
public static class DeviceChoice
{
    /// <summary>The setting's key, for messages.</summary>
    public const string SettingKey = "moco.host.device";

    /// <summary>The device for <paramref name="localWorkers"/> workers on this host, probed through TorchSharp.</summary>
    /// <param name="setting">The configured value.</param>
    /// <param name="localWorkers">The workers this process hosts (<c>--devices</c>): worker i uses <c>cuda:i</c>.</param>
    public static (ComputeDevice Device, string Line) Choose(string setting, int localWorkers)
    {
        var (devices, problem) = CudaDevices();
        return Choose(setting, localWorkers, devices, problem);
    }

    /// <summary>The device for <paramref name="localWorkers"/> workers on a host with <paramref name="cudaDevices"/> CUDA devices.</summary>
    /// <param name="setting">The configured value: <c>auto</c>, <c>cpu</c> or <c>cuda</c>, in any case.</param>
    /// <param name="localWorkers">The workers this process hosts.</param>
    /// <param name="cudaDevices">The CUDA devices libtorch sees (0 with a CPU-only libtorch).</param>
    /// <param name="cudaProblem">Why libtorch could not be asked, if it could not; null when it answered.</param>
    /// <exception cref="ConfigurationError">An unknown value, or <c>cuda</c> where the devices are missing.</exception>
    public static (ComputeDevice Device, string Line) Choose(string setting, int localWorkers, int cudaDevices, string? cudaProblem)
    {
        ArgumentNullException.ThrowIfNull(setting);
        ArgumentOutOfRangeException.ThrowIfLessThan(localWorkers, 1);
        var missing = cudaDevices == 0
            ? "libtorch sees no CUDA device (torch.cuda.is_available() is false: this build's libtorch is the CPU-only package, "
                + "or no NVIDIA driver or GPU is visible to the process" + (cudaProblem is null ? ")" : $"; {cudaProblem})")
            : cudaDevices < localWorkers
                ? $"{localWorkers} local worker(s) need {localWorkers} CUDA device(s) (worker i computes on cuda:i) and libtorch sees {cudaDevices}"
                : null;
        switch (setting.Trim().ToLowerInvariant())
        {
            case "cpu":
                return (ComputeDevice.Cpu, $"device: CPU ({SettingKey} = cpu)");
            case "cuda" when missing is null:
                return (ComputeDevice.Cuda, $"device: CUDA, {Slots(localWorkers)} ({SettingKey} = cuda; {cudaDevices} CUDA device(s) seen)");
            case "cuda":
                throw new ConfigurationError($"{SettingKey} = cuda, but {missing}. Run the CUDA build (Dockerfile.cuda, "
                    + $"build/publish.sh --variant cuda) on a machine with enough GPUs, lower --devices, or set {SettingKey} = cpu (or auto)");
            case "auto" when missing is null:
                return (ComputeDevice.Cuda, $"device: CUDA, {Slots(localWorkers)} ({SettingKey} = auto and {cudaDevices} CUDA device(s) seen)");
            case "auto":
                return (ComputeDevice.Cpu, $"device: CPU ({SettingKey} = auto and {missing})");
            default:
                throw new ConfigurationError($"{SettingKey} must be auto, cpu or cuda; got '{setting}'");
        }
    }

    private static string Slots(int localWorkers) =>
        localWorkers == 1 ? "worker 0 on cuda:0" : $"workers 0-{localWorkers - 1} on cuda:0-{localWorkers - 1}";

    private static (int Devices, string? Problem) CudaDevices()
    {
        try
        {
            return (torch.cuda.is_available() ? torch.cuda.device_count() : 0, null);
        }
        catch (Exception e) when (e is System.Runtime.InteropServices.ExternalException or InvalidOperationException or NotSupportedException or DllNotFoundException or EntryPointNotFoundException)
        {
            return (0, $"{e.GetType().Name}: {e.Message}");
        }
    }
}
