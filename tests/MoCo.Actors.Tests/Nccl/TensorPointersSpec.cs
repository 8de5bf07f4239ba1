using System.Runtime.InteropServices;
using MoCo.Actors.Collectives.Nccl;
using static TorchSharp.torch;

namespace MoCo.Actors.Tests.Nccl;

/// <summary>
/// Data pointers on CPU tensors, where memory can be read back: the arithmetic is the one the NCCL plane applies to
/// CUDA tensors (which it alone accepts), and the storage base is the one TorchSharp's own API reports.
/// </summary>
public sealed class TensorPointersSpec
{
    [Theory]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.Float64)]
    [InlineData(ScalarType.BFloat16)]
    [InlineData(ScalarType.Float16)]
    [InlineData(ScalarType.Int64)]
    [InlineData(ScalarType.Byte)]
    public void A_narrowed_view_must_start_storage_offset_times_element_size_past_its_base(ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var whole = arange(0, 24, dtype: ScalarType.Int64).to_type(dtype).reshape(4, 6);
        var rows = whole.narrow(0, 2, 2);

        Assert.Equal(12, rows.storage_offset());
        Assert.Equal(TensorPointers.StorageBase(whole), TensorPointers.StorageBase(rows));
        Assert.Equal(TensorPointers.DataPointer(whole) + (nint)(12 * whole.ElementSize), TensorPointers.DataPointer(rows));
        Assert.True(rows.is_contiguous());
    }

    [Fact]
    public void The_data_pointer_of_a_view_must_address_its_first_element()
    {
        using var scope = NewDisposeScope();
        var whole = arange(0, 24, dtype: ScalarType.Float32).reshape(4, 6);
        var rows = whole.narrow(0, 1, 2);
        var column = whole.select(1, 5);

        Assert.Equal(6f, ReadFloat(TensorPointers.DataPointer(rows)));
        Assert.Equal(5f, ReadFloat(TensorPointers.DataPointer(column)));
        Assert.Equal(0f, ReadFloat(TensorPointers.DataPointer(whole)));
    }

    [Fact]
    public void The_storage_base_must_be_what_TorchSharp_storage_data_ptr_reports()
    {
        using var scope = NewDisposeScope();
        var whole = arange(0, 24, dtype: ScalarType.Float32);
        var tail = whole.narrow(0, 7, 10);
        var storage = tail.storage<float>();

        Assert.Equal(storage.data_ptr(), TensorPointers.StorageBase(tail));
        Assert.Equal(storage.data_ptr() + 7 * sizeof(float), TensorPointers.DataPointer(tail));
    }

    private static float ReadFloat(IntPtr address)
    {
        return BitConverter.Int32BitsToSingle(Marshal.ReadInt32(address));
    }
}
