using System.Reflection;
using System.Runtime.InteropServices;
using TorchSharp;

namespace MoCo.Actors.Collectives.Nccl;

/// <summary>
/// The native libraries of the NCCL data plane, each loaded once by the first of its file names that the dynamic loader
/// finds, and the <see cref="NativeLibrary.SetDllImportResolver"/> that binds the <c>[LibraryImport]</c> names of this
/// assembly to them. An assembly has one resolver: any other native library MoCo.Actors binds goes through this one.
/// </summary>
internal static class NativeLibraries
{
    /// <summary>libnccl: the soname of NCCL 2.x first, then the development link (what pip's nvidia-nccl-cu12 and the CUDA repositories install).</summary>
    public static readonly IReadOnlyList<string> NcclNames = ["libnccl.so.2", "libnccl.so"];

    /// <summary>The CUDA runtime, newest major first (CUDA 13, 12, 11), then the development link.</summary>
    public static readonly IReadOnlyList<string> CudaRuntimeNames = ["libcudart.so.13", "libcudart.so.12", "libcudart.so.11.0", "libcudart.so"];

    private static readonly Lazy<NativeLibraryLoad> NcclLoad = new(() => NativeLibraryLoad.TryLoad(NcclNames));
    private static readonly Lazy<NativeLibraryLoad> CudaRuntimeLoad = new(() => NativeLibraryLoad.TryLoad(CudaRuntimeNames));
    private static int _registered;

    /// <summary>libnccl, loaded on first use.</summary>
    public static NativeLibraryLoad Nccl => NcclLoad.Value;

    /// <summary>libcudart, loaded on first use.</summary>
    public static NativeLibraryLoad CudaRuntime => CudaRuntimeLoad.Value;

    /// <summary>Installs the resolver, once; every class holding <c>[LibraryImport]</c>s calls this from its static constructor.</summary>
    public static void Register()
    {
        if (Interlocked.Exchange(ref _registered, 1) == 0)
        {
            NativeLibrary.SetDllImportResolver(typeof(NativeLibraries).Assembly, Resolve);
        }
    }

    private static IntPtr Resolve(string libraryName, Assembly assembly, DllImportSearchPath? searchPath)
    {
        return libraryName switch
        {
            NcclNative.Library => Nccl.Handle,
            CudaRuntimeNative.Library => CudaRuntime.Handle,
            // The copy TorchSharp itself loaded, found the way TorchSharp's own P/Invokes find it.
            TorchSharpNative.Library => NativeLibrary.Load(libraryName, typeof(torch).Assembly, searchPath),
            // Zero: the runtime's default probing, which fails naming the library.
            _ => IntPtr.Zero,
        };
    }
}
