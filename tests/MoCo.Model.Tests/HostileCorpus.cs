using System.Runtime.InteropServices;

namespace MoCo.Model.Tests;

/// <summary>
/// The crafted files of <c>tests/corpus</c> (see its README.md; written by its generate.py), and the hostile paths
/// that cannot be committed (named pipes, symbolic links), made at run time.
/// </summary>
internal static class HostileCorpus
{
    /// <summary>The corpus folder, found by walking up from the test binaries to the folder holding MoCo.Actors.sln.</summary>
    public static string Root { get; } = FindRoot();

    /// <summary>The corpus files of one folder (images, archives, checkpoints), by file name, sorted.</summary>
    public static IReadOnlyList<string> Files(string folder) =>
        Directory.GetFiles(Path.Combine(Root, folder)).OrderBy(f => f, StringComparer.Ordinal).ToList();

    /// <summary>The full path of a corpus file.</summary>
    public static string PathOf(string folder, string name) => Path.Combine(Root, folder, name);

    /// <summary>Makes a named pipe (FIFO) at <paramref name="path"/>: opening it for reading blocks until someone writes.</summary>
    public static void MakeFifo(string path)
    {
        if (mkfifo(path, 0b110_000_000) != 0)
        {
            throw new IOException($"mkfifo '{path}' failed with errno {Marshal.GetLastPInvokeError()}");
        }
    }

    /// <summary>
    /// Runs <paramref name="action"/> and fails the test when it has not returned within <paramref name="limit"/>; the
    /// named pipes in <paramref name="pipes"/> are then opened for writing and closed, so that a reader blocked on one
    /// sees its end and the stuck thread does not outlive the test.
    /// </summary>
    public static T Within<T>(TimeSpan limit, string what, Func<T> action, params string[] pipes)
    {
        var task = Task.Factory.StartNew(action, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        if (!task.Wait(limit))
        {
            foreach (string pipe in pipes)
            {
                using var writer = new FileStream(pipe, FileMode.Open, FileAccess.Write);
            }
            Assert.Fail($"{what} did not return within {limit.TotalSeconds:0} s (blocked on a named pipe?)");
        }
        return task.GetAwaiter().GetResult();
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "MoCo.Actors.sln")))
            {
                return Path.Combine(dir.FullName, "tests", "corpus");
            }
        }
        throw new DirectoryNotFoundException($"no MoCo.Actors.sln above {AppContext.BaseDirectory}: cannot find tests/corpus");
    }

    [DllImport("libc.so.6", SetLastError = true)]
    private static extern int mkfifo([MarshalAs(UnmanagedType.LPUTF8Str)] string path, uint mode);
}
