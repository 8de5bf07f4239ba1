using MoCo.Actors.Collectives.Nccl;
using MoCo.Model.Collectives;
using TorchSharp;
using static TorchSharp.torch;

namespace MoCo.Actors.Tests.Nccl;

/// <summary>
/// What of <see cref="NcclCollective"/> runs without a GPU: refusing to start where CUDA or libnccl is missing, and the
/// argument checks every collective makes before it touches NCCL. This test project references the CPU-only libtorch,
/// so TorchSharp never sees a CUDA device here. The collectives themselves need two GPUs: bench/nccl/README.md.
/// </summary>
public sealed class NcclCollectiveSpec
{
    private static readonly Device Cuda0 = new(DeviceType.CUDA, 0);

    [Fact]
    public void Creating_a_communicator_without_CUDA_must_fail_with_the_probes_message()
    {
        var probe = NcclProbe.Run();

        var refused = Assert.Throws<CollectiveException>(
            () => new NcclCollective(0, 1, NcclUniqueId.FromBytes(new byte[128]), 0, TimeSpan.FromSeconds(5)));

        Assert.Equal(NcclProbeStatus.CudaAbsent, probe.Status);
        Assert.Equal($"rank 0 cannot create its NCCL communicator: {probe.Message}", refused.Message);
        Assert.Contains("CUDA absent", refused.Message);
    }

    [Theory]
    [InlineData(-1, 2, 0, 5)]
    [InlineData(2, 2, 0, 5)]
    [InlineData(0, 0, 0, 5)]
    [InlineData(0, 2, -1, 5)]
    [InlineData(0, 2, 0, 0)]
    public void Creating_a_communicator_must_refuse_a_bad_rank_world_size_device_or_timeout(int rank, int worldSize, int device, int timeoutSeconds)
    {
        Assert.Throws<ArgumentOutOfRangeException>(
            () => new NcclCollective(rank, worldSize, default, device, TimeSpan.FromSeconds(timeoutSeconds)));
    }

    [Fact]
    public void A_CPU_tensor_must_be_refused_naming_the_device_it_should_be_on()
    {
        using var tensor = zeros(4);

        var refused = Assert.Throws<ArgumentException>(() => NcclCollective.CheckTensor(tensor, Cuda0, "all-reduce", "tensor"));

        Assert.Equal("tensor", refused.ParamName);
        Assert.StartsWith("all-reduce: this NCCL rank moves tensors on cuda:0; got a tensor on cpu", refused.Message);
    }

    [Fact]
    public void A_non_contiguous_tensor_must_be_refused_with_its_shape_and_strides()
    {
        using var scope = NewDisposeScope();
        var transposed = zeros(2, 3).t();

        var refused = Assert.Throws<ArgumentException>(() => NcclCollective.CheckTensor(transposed, CPU, "broadcast", "tensor"));

        Assert.Contains("broadcast: NCCL reads a flat buffer, so the tensor must be contiguous; got shape [3, 2] with strides [1, 3]", refused.Message);
    }

    [Fact]
    public void A_tensor_of_an_unsupported_dtype_must_be_refused_naming_the_operation_and_the_dtypes()
    {
        using var tensor = zeros(4, dtype: ScalarType.Int32);

        var refused = Assert.Throws<ArgumentException>(() => NcclCollective.CheckTensor(tensor, CPU, "all-gather", "local"));

        Assert.StartsWith("all-gather: the NCCL data plane moves Float32, Float64, BFloat16, Float16, Int64, Byte tensors; got Int32", refused.Message);
    }

    [Fact]
    public void A_contiguous_tensor_on_the_expected_device_must_pass_with_its_nccl_type()
    {
        using var scope = NewDisposeScope();
        var rows = zeros(new long[] { 6, 4 }, dtype: ScalarType.BFloat16).narrow(0, 2, 3);

        Assert.Equal(NcclDataType.Bfloat16, NcclCollective.CheckTensor(rows, CPU, "all-reduce", "tensor"));
    }

    [Theory]
    [InlineData(new long[] { 3, 3 }, 1, 3, true)]
    [InlineData(new long[] { 4, 3 }, 1, 3, true)]
    [InlineData(new long[] { 0, 3 }, 0, 0, true)]
    [InlineData(new long[] { 3 }, 0, 3, false)]
    [InlineData(new long[] { 3, 3, 3 }, 0, 3, false)]
    [InlineData(new long[] { 4, 3 }, 0, 3, false)]
    [InlineData(new long[] { 3, -3 }, 0, 3, false)]
    public void All_gather_counts_must_give_one_share_per_rank_with_this_ranks_rows(long[] counts, int rank, long rows, bool valid)
    {
        using var local = zeros(rows, 2);

        var check = () => NcclCollective.CheckCounts(local, counts, rank, worldSize: 2);

        if (valid)
        {
            check();
        }
        else
        {
            var refused = Assert.Throws<ArgumentException>(check);
            Assert.Contains($"rank {rank} of 2 gathers {rows} rows but counts say [{string.Join(", ", counts)}]", refused.Message);
        }
    }

    [Fact]
    public void All_gather_must_refuse_a_0_dimensional_tensor()
    {
        using var scalar = tensor(1f);

        Assert.Throws<ArgumentException>(() => NcclCollective.CheckCounts(scalar, [1L], 0, 1));
    }
}
