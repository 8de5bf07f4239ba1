using System.Runtime.InteropServices;

namespace MoCo.Model.Checkpoints;

/// <summary>
/// Writes a file so that readers see either the old file or the complete new one, never a partial one:
/// write to <c>path.tmp-&lt;guid&gt;</c>, flush to disk, rename over <c>path</c>, then fsync the directory
/// so that the rename itself survives a power cut (on Linux and macOS; elsewhere the rename is enough).
/// </summary>
internal static class AtomicFile
{
    /// <summary>
    /// Creates the temporary file, lets <paramref name="write"/> fill it, and renames it over
    /// <paramref name="path"/>. If <paramref name="write"/> throws, the temporary file is deleted,
    /// <paramref name="path"/> is left as it was, and the exception propagates.
    /// </summary>
    public static void Write(string path, Action<FileStream> write)
    {
        string fullPath = Path.GetFullPath(path);
        string directory = Path.GetDirectoryName(fullPath)
            ?? throw new ArgumentException($"'{path}' has no directory.", nameof(path));
        Directory.CreateDirectory(directory);
        string temporary = $"{fullPath}.tmp-{Guid.NewGuid():N}";
        try
        {
            using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temporary, fullPath, overwrite: true);
        }
        catch
        {
            try
            {
                File.Delete(temporary);
            }
            catch (IOException)
            {
                // The original exception matters more than a temporary file we could not remove.
            }
            throw;
        }
        SyncDirectory(directory);
    }

    /// <summary>Fsyncs a directory so that a rename in it is durable; best effort, false where unsupported.</summary>
    public static bool SyncDirectory(string directory)
    {
        if (OperatingSystem.IsLinux())
        {
            int fd = Linux.open(directory, 0 /* O_RDONLY */);
            if (fd < 0)
            {
                return false;
            }
            bool ok = Linux.fsync(fd) == 0;
            Linux.close(fd);
            return ok;
        }
        if (OperatingSystem.IsMacOS())
        {
            int fd = MacOS.open(directory, 0 /* O_RDONLY */);
            if (fd < 0)
            {
                return false;
            }
            bool ok = MacOS.fsync(fd) == 0;
            MacOS.close(fd);
            return ok;
        }
        return false;
    }

    private static class Linux
    {
        [DllImport("libc.so.6", SetLastError = true)]
        public static extern int open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

        [DllImport("libc.so.6", SetLastError = true)]
        public static extern int fsync(int fd);

        [DllImport("libc.so.6", SetLastError = true)]
        public static extern int close(int fd);
    }

    private static class MacOS
    {
        [DllImport("libSystem.dylib", SetLastError = true)]
        public static extern int open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

        [DllImport("libSystem.dylib", SetLastError = true)]
        public static extern int fsync(int fd);

        [DllImport("libSystem.dylib", SetLastError = true)]
        public static extern int close(int fd);
    }
}
