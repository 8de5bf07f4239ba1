using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace MoCo.Model.Diagnostics;

/// <summary>The global switches libtorch's libc10.so exports (its gflags-style <c>FLAGS_*</c> variables), written in place.</summary>
internal static class LibC10
{
    /// <summary>The address of the exported variable <paramref name="name"/>; throws when this libtorch has none.</summary>
    public static IntPtr Flag(string name)
    {
        InitializeDeviceType(DeviceType.CPU); // loads libtorch (and libc10 beside it)
        var library = NativeLibrary.Load("libc10.so", typeof(torch).Assembly, DllImportSearchPath.AssemblyDirectory | DllImportSearchPath.SafeDirectories);
        return NativeLibrary.TryGetExport(library, name, out var flag)
            ? flag
            : throw new InvalidOperationException($"this libtorch's libc10.so has no {name}");
    }
}
