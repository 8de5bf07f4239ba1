using System.Runtime.InteropServices;

namespace MoCo.Actors.Collectives.Nccl;

/// <summary>
/// The few CUDA runtime entry points the NCCL data plane needs, from libcudart (found by <see cref="NativeLibraries"/>).
/// TorchSharp exposes no device or stream API, so the device is chosen and the stream polled here.
/// </summary>
/// <remarks>
/// Our libcudart may be another copy than the one inside libtorch (and libnccl links its own statically). That is
/// sound: every copy works on the device's primary context through the driver, so the current device of a thread and
/// the legacy default stream (handle 0) are the same for all of them.
/// </remarks>
internal static partial class CudaRuntimeNative
{
    /// <summary>The name the <c>[LibraryImport]</c>s use; <see cref="NativeLibraries"/> maps it to the file that loaded.</summary>
    public const string Library = "cudart";

    /// <summary><c>cudaSuccess</c>.</summary>
    public const int Success = 0;

    /// <summary><c>cudaErrorNotReady</c> (CUDA 10.1 and later): the stream still has work.</summary>
    public const int ErrorNotReady = 600;

    /// <summary>
    /// The legacy default stream (<c>cudaStream_t</c> 0, the NULL stream): where libtorch, and so TorchSharp, enqueues
    /// every kernel, since TorchSharp cannot choose a stream. NCCL work enqueued here runs after the kernels that
    /// produced its input and before any kernel launched after it.
    /// </summary>
    public static readonly IntPtr LegacyDefaultStream = IntPtr.Zero;

    static CudaRuntimeNative()
    {
        NativeLibraries.Register();
    }

    /// <summary><c>cudaError_t cudaSetDevice(int device)</c>: the calling thread's current device (NCCL init reads it).</summary>
    [LibraryImport(Library)]
    public static partial int cudaSetDevice(int device);

    /// <summary><c>cudaError_t cudaStreamQuery(cudaStream_t stream)</c>: <see cref="Success"/> when the stream is idle, <see cref="ErrorNotReady"/> while it runs.</summary>
    [LibraryImport(Library)]
    public static partial int cudaStreamQuery(IntPtr stream);

    /// <summary><c>cudaError_t cudaGetDeviceCount(int* count)</c>.</summary>
    [LibraryImport(Library)]
    public static partial int cudaGetDeviceCount(out int count);

    /// <summary><c>const char* cudaGetErrorString(cudaError_t error)</c>: a static string.</summary>
    [LibraryImport(Library)]
    public static partial IntPtr cudaGetErrorString(int error);

    /// <summary>"cudaError_t 700: an illegal memory access was encountered".</summary>
    /// <param name="error">The failed code.</param>
    public static string Describe(int error)
    {
        return $"cudaError_t {error}: {Marshal.PtrToStringUTF8(cudaGetErrorString(error))}";
    }
}
