using MoCo.Actors.Collectives;
using MoCo.Actors.Collectives.Nccl;
using MoCo.Host.Configuration;
using MoCo.Host.Hosting;
using MoCo.Model.Training;

namespace MoCo.Host.Tests;

/// <summary>
/// <c>moco.host.device</c> and the data plane chosen with it, as pure functions of what the host has (the counts of
/// CUDA devices and the NCCL probe's findings are given), and once against this host's libtorch.
/// </summary>
public sealed class DeviceChoiceTests
{
    [Fact]
    public void Auto_must_pick_the_cpu_where_libtorch_sees_no_cuda_device_and_say_why()
    {
        var (device, line) = DeviceChoice.Choose("auto", 1, cudaDevices: 0, cudaProblem: null);

        Assert.Equal(ComputeDevice.Cpu, device);
        Assert.StartsWith("device: CPU (moco.host.device = auto and libtorch sees no CUDA device (torch.cuda.is_available() is false", line, StringComparison.Ordinal);
    }

    [Fact]
    public void Auto_must_pick_cuda_only_when_every_local_worker_has_its_device()
    {
        var (two, line) = DeviceChoice.Choose(" AUTO ", 2, cudaDevices: 2, cudaProblem: null);
        Assert.Equal(ComputeDevice.Cuda, two);
        Assert.Equal("device: CUDA, workers 0-1 on cuda:0-1 (moco.host.device = auto and 2 CUDA device(s) seen)", line);

        var (three, why) = DeviceChoice.Choose("auto", 3, cudaDevices: 2, cudaProblem: null);
        Assert.Equal(ComputeDevice.Cpu, three);
        Assert.Contains("3 local worker(s) need 3 CUDA device(s) (worker i computes on cuda:i) and libtorch sees 2", why, StringComparison.Ordinal);
    }

    [Fact]
    public void Cuda_without_enough_devices_must_fail_naming_what_is_missing()
    {
        var none = Assert.Throws<ConfigurationError>(() => DeviceChoice.Choose("cuda", 1, cudaDevices: 0, cudaProblem: "DllNotFoundException: libtorch_cuda.so"));
        Assert.StartsWith("moco.host.device = cuda, but libtorch sees no CUDA device", none.Message, StringComparison.Ordinal);
        Assert.Contains("CPU-only package", none.Message, StringComparison.Ordinal);
        Assert.Contains("DllNotFoundException: libtorch_cuda.so", none.Message, StringComparison.Ordinal);
        Assert.Contains("set moco.host.device = cpu (or auto)", none.Message, StringComparison.Ordinal);

        var few = Assert.Throws<ConfigurationError>(() => DeviceChoice.Choose("cuda", 4, cudaDevices: 2, cudaProblem: null));
        Assert.Contains("4 local worker(s) need 4 CUDA device(s)", few.Message, StringComparison.Ordinal);

        Assert.Equal(ComputeDevice.Cuda, DeviceChoice.Choose("cuda", 2, cudaDevices: 8, cudaProblem: null).Device);
        Assert.Equal(ComputeDevice.Cpu, DeviceChoice.Choose("cpu", 2, cudaDevices: 8, cudaProblem: null).Device);
    }

    [Fact]
    public void An_unknown_device_must_be_refused_listing_the_valid_ones()
    {
        var e = Assert.Throws<ConfigurationError>(() => DeviceChoice.Choose("gpu", 1, cudaDevices: 1, cudaProblem: null));

        Assert.Equal("moco.host.device must be auto, cpu or cuda; got 'gpu'", e.Message);
    }

    [Fact]
    public void Auto_on_this_host_must_follow_what_libtorch_reports()
    {
        // this repository's tests build against TorchSharp's CPU libtorch, so this is the CPU on any machine; with the CUDA
        // package on a GPU machine it is CUDA, as the line says
        var (device, line) = DeviceChoice.Choose("auto", 1);

        bool cuda = TorchSharp.torch.cuda.is_available();
        Assert.Equal(cuda ? ComputeDevice.Cuda : ComputeDevice.Cpu, device);
        Assert.StartsWith(cuda ? "device: CUDA" : "device: CPU (moco.host.device = auto and libtorch sees no CUDA device", line, StringComparison.Ordinal);
    }

    [Fact]
    public void Workers_on_the_cpu_must_use_the_cpu_collectives_and_refuse_forced_nccl()
    {
        var (plane, line) = DataPlaneChoice.Choose(new DataPlaneSettings { Backend = "auto" }, ComputeDevice.Cpu, Host(2, nccl: true));
        Assert.Equal(DataPlaneKind.Tcp, plane);
        Assert.Contains("the workers compute on the CPU", line, StringComparison.Ordinal);

        // NCCL could run here, but the tensors are on the CPU
        var cpu = Assert.Throws<ConfigurationError>(() => DataPlaneChoice.Choose(new DataPlaneSettings { Backend = "nccl" }, ComputeDevice.Cpu, Host(2, nccl: true)));
        Assert.Contains("the workers compute on the CPU and NCCL moves CUDA tensors only: set moco.host.device = cuda", cpu.Message, StringComparison.Ordinal);

        // NCCL cannot run here: what is missing comes first
        var missing = Assert.Throws<ConfigurationError>(() => DataPlaneChoice.Choose(new DataPlaneSettings { Backend = "nccl" }, ComputeDevice.Cpu, Host(0, nccl: false)));
        Assert.StartsWith("moco.data-plane.backend = nccl, but this host cannot run NCCL: CUDA absent", missing.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Workers_on_cuda_must_use_nccl_where_it_runs_and_host_copies_otherwise()
    {
        Assert.Equal(DataPlaneKind.Nccl, DataPlaneChoice.Choose(new DataPlaneSettings { Backend = "auto" }, ComputeDevice.Cuda, Host(2, nccl: true)).Backend);
        Assert.Equal(DataPlaneKind.Nccl, DataPlaneChoice.Choose(new DataPlaneSettings { Backend = "nccl" }, ComputeDevice.Cuda, Host(2, nccl: true)).Backend);

        var (plane, line) = DataPlaneChoice.Choose(new DataPlaneSettings { Backend = "auto" }, ComputeDevice.Cuda, Host(2, nccl: false));
        Assert.Equal(DataPlaneKind.Tcp, plane);
        Assert.EndsWith("CUDA tensors go through host copies when there is more than one worker", line, StringComparison.Ordinal);
        Assert.Equal(DataPlaneKind.Tcp, DataPlaneChoice.Choose(new DataPlaneSettings { Backend = "tcp" }, ComputeDevice.Cuda, Host(2, nccl: true)).Backend);

        var refused = Assert.Throws<ConfigurationError>(() => DataPlaneChoice.Choose(new DataPlaneSettings { Backend = "nccl" }, ComputeDevice.Cuda, Host(2, nccl: false)));
        Assert.StartsWith("moco.data-plane.backend = nccl, but this host cannot run NCCL: libnccl absent", refused.Message, StringComparison.Ordinal);
    }

    private static NcclProbeResult Host(int cudaDevices, bool nccl)
    {
        var cudart = new NativeLibraryLoad(new IntPtr(1), "libcudart.so.12", ["libcudart.so.12"], []);
        var library = nccl
            ? new NativeLibraryLoad(new IntPtr(1), "libnccl.so.2", ["libnccl.so.2"], [])
            : new NativeLibraryLoad(IntPtr.Zero, null, ["libnccl.so.2", "libnccl.so"], ["not found", "not found"]);
        return new NcclProbeResult(cudaDevices, null, cudart, library, nccl ? new NcclVersion(2, 21, 5) : null, null);
    }
}
