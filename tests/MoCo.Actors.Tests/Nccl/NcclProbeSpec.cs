using System.Runtime.InteropServices;
using MoCo.Actors.Collectives.Nccl;
using static MoCo.Actors.Tests.Nccl.ProbeResults;

namespace MoCo.Actors.Tests.Nccl;

public sealed class NcclProbeSpec
{
    private const string NcclAbsentClause =
        "libnccl absent (tried libnccl.so.2, libnccl.so: not found; add the directory holding one of them to LD_LIBRARY_PATH)";

    private const string CudaAbsentClause =
        "CUDA absent (TorchSharp sees no CUDA device: torch.cuda.is_available() is false, so the libtorch package is a CPU-only " +
        "build such as libtorch-cpu-linux-x64, or no NVIDIA driver and device are visible)";

    /// <summary>
    /// The real probe on this host. This test project references the CPU-only libtorch, so CUDA is absent wherever it
    /// runs; whether libnccl is there is checked independently with the loader and must match.
    /// </summary>
    [Fact]
    public void Probe_on_this_host_must_report_CUDA_absent_and_the_libnccl_it_finds_without_throwing()
    {
        var result = NcclProbe.Run();

        Assert.Equal(NcclProbeStatus.CudaAbsent, result.Status);
        Assert.Equal(0, result.CudaDeviceCount);
        Assert.False(result.IsAvailable);
        Assert.StartsWith($"NCCL data plane unavailable: {CudaAbsentClause}", result.Message);
        Assert.DoesNotContain('\n', result.Message);

        var ncclHere = NativeLibrary.TryLoad("libnccl.so.2", out _) || NativeLibrary.TryLoad("libnccl.so", out _);
        Assert.Equal(ncclHere, result.Nccl.IsLoaded);
        if (ncclHere)
        {
            Assert.NotNull(result.NcclVersion);
            Assert.DoesNotContain("libnccl absent", result.Message);
        }
        else
        {
            Assert.Null(result.NcclVersion);
            Assert.Contains(NcclAbsentClause, result.Message);
        }
    }

    [Fact]
    public void A_host_with_everything_must_report_the_nccl_version_found()
    {
        var result = Host(cudaDevices: 8, cudaRuntime: true, nccl: true, new NcclVersion(2, 21, 5));

        Assert.Equal(NcclProbeStatus.Available, result.Status);
        Assert.Empty(result.Problems);
        Assert.Equal(
            "NCCL data plane available: libnccl 2.21.5 found (libnccl.so.2); 8 CUDA devices; libcudart found (libcudart.so.12)",
            result.Message);
    }

    [Fact]
    public void A_host_without_CUDA_must_say_so_first_and_name_every_missing_library()
    {
        var result = Host(cudaDevices: 0, cudaRuntime: false, nccl: false);

        Assert.Equal(NcclProbeStatus.CudaAbsent, result.Status);
        Assert.Equal(
            $"NCCL data plane unavailable: {CudaAbsentClause}; libcudart absent (tried libcudart.so.13, libcudart.so.12, " +
            $"libcudart.so.11.0, libcudart.so: not found; add the directory holding one of them to LD_LIBRARY_PATH); {NcclAbsentClause}",
            result.Message);
    }

    [Fact]
    public void A_GPU_host_without_libnccl_must_name_the_files_tried_and_the_LD_LIBRARY_PATH_hint()
    {
        var result = Host(cudaDevices: 2, cudaRuntime: true, nccl: false);

        Assert.Equal(NcclProbeStatus.NcclAbsent, result.Status);
        Assert.Equal([NcclAbsentClause], result.Problems);
        Assert.Equal($"NCCL data plane unavailable: {NcclAbsentClause}", result.Message);
    }

    [Fact]
    public void A_GPU_host_without_libcudart_must_name_the_runtime()
    {
        var result = Host(cudaDevices: 1, cudaRuntime: false, nccl: true);

        Assert.Equal(NcclProbeStatus.CudaRuntimeAbsent, result.Status);
        Assert.StartsWith("NCCL data plane unavailable: libcudart absent (tried libcudart.so.13,", result.Message);
    }

    [Fact]
    public void An_nccl_older_than_2_14_must_be_refused_with_both_versions()
    {
        var result = Host(cudaDevices: 1, cudaRuntime: true, nccl: true, new NcclVersion(2, 12, 12));

        Assert.Equal(NcclProbeStatus.NcclUnsupported, result.Status);
        Assert.Equal(
            "NCCL data plane unavailable: libnccl 2.12.12 found (libnccl.so.2) but older than 2.14.0, the first with non-blocking communicators",
            result.Message);
    }

    [Fact]
    public void An_nccl_that_will_not_report_its_version_must_be_refused_with_the_reason()
    {
        var result = Host(cudaDevices: 1, cudaRuntime: true, nccl: true) with { NcclVersion = null, NcclVersionProblem = "ncclSystemError: unhandled system error" };

        Assert.Equal(NcclProbeStatus.NcclUnsupported, result.Status);
        Assert.Equal(
            "NCCL data plane unavailable: libnccl found (libnccl.so.2) but ncclGetVersion failed: ncclSystemError: unhandled system error",
            result.Message);
    }
}
