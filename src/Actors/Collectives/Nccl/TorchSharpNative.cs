using System.Runtime.InteropServices;

namespace MoCo.Actors.Collectives.Nccl;

/// <summary>
/// The one entry point of TorchSharp's native library (libLibTorchSharp) used directly: the storage base address of any
/// dtype. TorchSharp 0.107's public <c>Tensor.storage&lt;T&gt;().data_ptr()</c> calls the same function but only for the
/// element types it can name in C# (no bfloat16, no float16).
/// </summary>
internal static partial class TorchSharpNative
{
    /// <summary>The name TorchSharp's own P/Invokes use; <see cref="NativeLibraries"/> resolves it through TorchSharp's assembly.</summary>
    public const string Library = "LibTorchSharp";

    static TorchSharpNative()
    {
        NativeLibraries.Register();
    }

    /// <summary><c>void* THSStorage_data_ptr(const Tensor tensor)</c>: <c>tensor-&gt;storage().data_ptr().get()</c>, the storage's first byte (not the tensor's).</summary>
    [LibraryImport(Library)]
    public static partial IntPtr THSStorage_data_ptr(IntPtr tensor);
}
