using static TorchSharp.torch;

namespace MoCo.Actors.Collectives.Nccl;

/// <summary>
/// Raw addresses of tensor data, for handing TorchSharp tensors to NCCL. A CPU address for a CPU tensor, a device
/// address for a CUDA one. Valid only while the tensor lives and its storage is not resized; the caller keeps it alive.
/// </summary>
public static class TensorPointers
{
    /// <summary>
    /// The address of the tensor's first element: <see cref="StorageBase"/> + <c>storage_offset()</c> × element size.
    /// A view (narrow, slice, select) shares its base's storage and starts <c>storage_offset()</c> elements into it.
    /// </summary>
    /// <param name="tensor">A dense (strided) tensor.</param>
    public static IntPtr DataPointer(Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        var offsetBytes = checked(tensor.storage_offset() * tensor.ElementSize);
        return StorageBase(tensor) + checked((nint)offsetBytes);
    }

    /// <summary>
    /// The address of the first byte of the tensor's storage (what TorchSharp 0.107's <c>storage&lt;T&gt;().data_ptr()</c>
    /// returns), for any dtype. Zero for a storage with no bytes.
    /// </summary>
    /// <param name="tensor">A dense (strided) tensor.</param>
    public static IntPtr StorageBase(Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (tensor.is_sparse)
        {
            throw new ArgumentException("a sparse tensor has no single data pointer", nameof(tensor));
        }

        var address = TorchSharpNative.THSStorage_data_ptr(tensor.Handle);
        GC.KeepAlive(tensor);
        return address;
    }
}
