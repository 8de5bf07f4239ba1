using MoCo.Actors.Collectives;
using MoCo.Actors.Collectives.Nccl;
using static MoCo.Actors.Tests.Nccl.ProbeResults;

namespace MoCo.Actors.Tests.Nccl;

public sealed class DataPlaneSelectorSpec
{
    [Theory]
    [InlineData(DataPlaneRequest.Auto, 0, false, false, DataPlaneKind.Tcp)]
    [InlineData(DataPlaneRequest.Auto, 0, true, true, DataPlaneKind.Tcp)]
    [InlineData(DataPlaneRequest.Auto, 2, true, false, DataPlaneKind.Tcp)]
    [InlineData(DataPlaneRequest.Auto, 2, false, true, DataPlaneKind.Tcp)]
    [InlineData(DataPlaneRequest.Auto, 2, true, true, DataPlaneKind.Nccl)]
    [InlineData(DataPlaneRequest.Tcp, 0, false, false, DataPlaneKind.Tcp)]
    [InlineData(DataPlaneRequest.Tcp, 2, true, false, DataPlaneKind.Tcp)]
    [InlineData(DataPlaneRequest.Tcp, 2, true, true, DataPlaneKind.Tcp)]
    [InlineData(DataPlaneRequest.Nccl, 2, true, true, DataPlaneKind.Nccl)]
    public void Nccl_must_be_chosen_only_with_CUDA_devices_and_libnccl_and_not_when_tcp_is_forced(
        DataPlaneRequest requested, int cudaDevices, bool cudaRuntime, bool nccl, DataPlaneKind expected)
    {
        var choice = DataPlaneSelector.Choose(requested, Host(cudaDevices, cudaRuntime, nccl));

        Assert.Equal(expected, choice.Backend);
    }

    [Theory]
    [InlineData(0, false, false)]
    [InlineData(0, true, true)]
    [InlineData(2, true, false)]
    [InlineData(2, false, true)]
    public void Forcing_nccl_on_a_host_that_lacks_a_piece_must_fail(int cudaDevices, bool cudaRuntime, bool nccl)
    {
        Assert.Throws<CollectiveBackendUnavailableException>(
            () => DataPlaneSelector.Choose(DataPlaneRequest.Nccl, Host(cudaDevices, cudaRuntime, nccl)));
    }

    [Fact]
    public void Forcing_nccl_without_libnccl_must_name_the_library_the_files_tried_and_the_way_out()
    {
        var refused = Assert.Throws<CollectiveBackendUnavailableException>(
            () => DataPlaneSelector.Choose(DataPlaneRequest.Nccl, Host(cudaDevices: 4, cudaRuntime: true, nccl: false)));

        Assert.Equal(
            "moco.data-plane.backend = nccl, but this host cannot run NCCL: libnccl absent (tried libnccl.so.2, libnccl.so: not found; " +
            "add the directory holding one of them to LD_LIBRARY_PATH). Install what is missing, or set moco.data-plane.backend = auto " +
            "(or tcp) to use the TCP ring.",
            refused.Message);
    }

    [Fact]
    public void Forcing_nccl_on_this_CPU_only_test_host_must_name_CUDA_as_missing()
    {
        var refused = Assert.Throws<CollectiveBackendUnavailableException>(
            () => DataPlaneSelector.Choose(DataPlaneRequest.Nccl, NcclProbe.Run()));

        Assert.StartsWith("moco.data-plane.backend = nccl, but this host cannot run NCCL: CUDA absent (", refused.Message);
    }

    [Fact]
    public void Auto_falling_back_to_tcp_must_give_the_probes_reason()
    {
        var probe = Host(cudaDevices: 2, cudaRuntime: true, nccl: false);

        var choice = DataPlaneSelector.Choose(DataPlaneRequest.Auto, probe);

        Assert.Equal($"TCP ring: moco.data-plane.backend = auto and {probe.Message}", choice.Reason);
    }

    [Fact]
    public void Auto_choosing_nccl_must_give_the_version_found()
    {
        var choice = DataPlaneSelector.Choose(DataPlaneRequest.Auto, Host(cudaDevices: 2, cudaRuntime: true, nccl: true));

        Assert.Equal(
            "NCCL: moco.data-plane.backend = auto and NCCL data plane available: libnccl 2.21.5 found (libnccl.so.2); 2 CUDA devices; libcudart found (libcudart.so.12)",
            choice.Reason);
    }

    [Theory]
    [InlineData("auto", DataPlaneRequest.Auto)]
    [InlineData("TCP", DataPlaneRequest.Tcp)]
    [InlineData(" nccl ", DataPlaneRequest.Nccl)]
    public void The_setting_must_read_auto_tcp_and_nccl_in_any_case(string value, DataPlaneRequest expected)
    {
        Assert.Equal(expected, DataPlaneSelector.Parse(value));
    }

    [Theory]
    [InlineData("gloo")]
    [InlineData("")]
    public void Any_other_setting_must_be_refused_listing_the_valid_ones(string value)
    {
        var refused = Assert.Throws<FormatException>(() => DataPlaneSelector.Parse(value));

        Assert.Equal($"moco.data-plane.backend must be auto, tcp or nccl; got '{value}'", refused.Message);
    }
}
