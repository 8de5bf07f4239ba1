using System.Runtime.InteropServices;

namespace MoCo.Actors.Collectives.Nccl;

/// <summary>
/// The outcome of loading a native library by the first of several file names that the dynamic loader finds: the
/// handle and the name that worked, or every name tried with why each failed.
/// </summary>
/// <param name="Handle">The library's handle, or <see cref="IntPtr.Zero"/> when no name loaded.</param>
/// <param name="LoadedName">The file name that loaded, or null.</param>
/// <param name="Tried">Every file name tried, in order.</param>
/// <param name="Failures">Why each failed name failed ("not found", or the loader's message), in the order of <paramref name="Tried"/>.</param>
public sealed record NativeLibraryLoad(IntPtr Handle, string? LoadedName, IReadOnlyList<string> Tried, IReadOnlyList<string> Failures)
{
    private const string NotFound = "not found";

    /// <summary>Whether one of the names loaded.</summary>
    public bool IsLoaded => Handle != IntPtr.Zero;

    /// <summary>Loads the first of <paramref name="names"/> that the dynamic loader (dlopen: LD_LIBRARY_PATH, ld.so.cache, ...) can open.</summary>
    /// <param name="names">File names, most specific first (<c>libnccl.so.2</c> before <c>libnccl.so</c>).</param>
    public static NativeLibraryLoad TryLoad(IReadOnlyList<string> names)
    {
        ArgumentNullException.ThrowIfNull(names);
        var failures = new List<string>();
        foreach (var name in names)
        {
            try
            {
                return new NativeLibraryLoad(NativeLibrary.Load(name), name, names, failures);
            }
            catch (DllNotFoundException e)
            {
                failures.Add(LoaderReason(name, e.Message));
            }
            catch (BadImageFormatException e)
            {
                failures.Add($"{name}: {e.Message}");
            }
        }

        return new NativeLibraryLoad(IntPtr.Zero, null, names, failures);
    }

    /// <summary>
    /// One clause for a message: "<paramref name="what"/> found (libnccl.so.2)", or "<paramref name="what"/> absent
    /// (tried libnccl.so.2, libnccl.so: not found; add the directory holding one of them to LD_LIBRARY_PATH)", with
    /// the loader's own message when a file exists but would not load (a missing dependency, a wrong architecture).
    /// </summary>
    /// <param name="what">What the library is, for a person ("libnccl").</param>
    public string Describe(string what)
    {
        if (IsLoaded)
        {
            return $"{what} found ({LoadedName})";
        }

        var broken = Failures.Where(f => f != NotFound).Distinct().ToList();
        var reasons = broken.Count == 0 ? NotFound : string.Join("; ", broken);
        var holding = Tried.Count > 1 ? "one of them" : "it";
        return $"{what} absent (tried {string.Join(", ", Tried)}: {reasons}; add the directory holding {holding} to LD_LIBRARY_PATH)";
    }

    /// <summary>The dynamic loader's own words (the lines after .NET's generic first line), "not found" when it found no file.</summary>
    private static string LoaderReason(string name, string message)
    {
        var detail = string.Join("; ", message.Split('\n').Skip(1).Select(l => l.Trim()).Where(l => l.Length > 0));
        if (detail.Length == 0 || detail == $"{name}: cannot open shared object file: No such file or directory")
        {
            return NotFound;
        }

        return detail;
    }
}
