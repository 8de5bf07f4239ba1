using MoCo.Actors.Collectives.Nccl;
using static TorchSharp.torch;

namespace MoCo.Actors.Tests.Nccl;

public sealed class NcclDataTypesSpec
{
    /// <summary>The expected values are nccl.h's: ncclFloat32 7, ncclFloat64 8, ncclBfloat16 9, ncclFloat16 6, ncclInt64 4, ncclUint8 1.</summary>
    [Theory]
    [InlineData(ScalarType.Float32, 7)]
    [InlineData(ScalarType.Float64, 8)]
    [InlineData(ScalarType.BFloat16, 9)]
    [InlineData(ScalarType.Float16, 6)]
    [InlineData(ScalarType.Int64, 4)]
    [InlineData(ScalarType.Byte, 1)]
    public void Each_supported_dtype_must_map_to_the_ncclDataType_t_of_the_same_element_size(ScalarType dtype, int expected)
    {
        using var tensor = empty(3, dtype: dtype);

        var mapped = NcclDataTypes.For(dtype);

        Assert.Equal(expected, (int)mapped);
        Assert.Equal(tensor.ElementSize, NcclDataTypes.SizeOf(mapped));
    }

    [Theory]
    [InlineData(ScalarType.Int32)]
    [InlineData(ScalarType.Int8)]
    [InlineData(ScalarType.Bool)]
    [InlineData(ScalarType.ComplexFloat32)]
    public void An_unsupported_dtype_must_be_refused_naming_the_supported_ones(ScalarType dtype)
    {
        var refused = Assert.Throws<ArgumentException>(() => NcclDataTypes.For(dtype));

        Assert.Contains($"got {dtype}", refused.Message);
        Assert.Contains("Float32, Float64, BFloat16, Float16, Int64, Byte", refused.Message);
    }
}
