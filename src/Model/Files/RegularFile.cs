namespace MoCo.Model.Files;

/// <summary>
/// Checks a path before anything opens it, for the readers of files that come from outside (images, archives,
/// checkpoints): the path must lead, through any symbolic links, to a non-empty regular file, and a file is read
/// whole only up to a stated size. Opening a named pipe blocks until someone writes to it, and a device never ends,
/// so neither is ever opened; on Linux a pipe, a socket and a device all report a size of 0 bytes, which is how
/// they are told apart from files without a system call of our own (an empty regular file is refused with them).
/// Symbolic links are followed wherever they lead (a data set may be a tree of links into a shared store; what is
/// read is only ever decoded, never echoed): a dangling link, a loop of links, or a link to a directory or to
/// anything but a regular file is refused, named as such.
/// </summary>
internal static class RegularFile
{
    /// <summary>What a pipe, socket or device is refused as (they report 0 bytes, like an empty file).</summary>
    public const string EmptyOrSpecial = "empty (0 bytes), or not a regular file (a named pipe, socket or device reads as 0 bytes)";

    /// <summary>
    /// The size of the regular file <paramref name="path"/> leads to, following symbolic links, without opening it.
    /// </summary>
    /// <exception cref="FileNotFoundException">Nothing is at <paramref name="path"/>.</exception>
    /// <exception cref="InvalidDataException">
    /// The path is a directory, a dangling link, a loop of links, or leads to something empty or not a regular file;
    /// the message says which (without the path: callers name it).
    /// </exception>
    public static long Length(string path)
    {
        FileSystemInfo info = new FileInfo(path);
        if (info.LinkTarget is { } linkTarget)
        {
            FileSystemInfo? target;
            try
            {
                target = info.ResolveLinkTarget(returnFinalTarget: true);
            }
            catch (IOException e)
            {
                throw new InvalidDataException($"a symbolic link that cannot be followed (a loop of links, or too many): {e.Message}", e);
            }
            if (target is null || !target.Exists)
            {
                throw Directory.Exists(target?.FullName)
                    ? new InvalidDataException($"a symbolic link to a directory ('{linkTarget}'), not to a file")
                    : new InvalidDataException($"a dangling symbolic link (its target '{linkTarget}' does not exist)");
            }
            info = target;
        }
        else if (!info.Exists)
        {
            throw Directory.Exists(path)
                ? new InvalidDataException("a directory, not a file")
                : new FileNotFoundException($"'{path}' does not exist.", path);
        }
        long length = ((FileInfo)info).Length;
        if (length <= 0)
        {
            throw new InvalidDataException(EmptyOrSpecial);
        }
        return length;
    }

    /// <summary>
    /// Reads the whole regular file <paramref name="path"/> leads to, refusing one of more than <paramref name="maxBytes"/>
    /// bytes before allocating anything; the size read is the opened file's own, so a file that grows after the check
    /// is still bounded.
    /// </summary>
    /// <exception cref="FileNotFoundException">Nothing is at <paramref name="path"/>.</exception>
    /// <exception cref="InvalidDataException">Not a regular file (see <see cref="Length"/>), too large, or shrank while read (the message says which, without the path).</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxBytes"/> exceeds what one array can hold.</exception>
    public static byte[] ReadAllBytes(string path, long maxBytes)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(maxBytes, Array.MaxLength);
        CheckSize(Length(path), maxBytes);
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1);
        long length = stream.Length;
        CheckSize(length, maxBytes);
        var bytes = GC.AllocateUninitializedArray<byte>(checked((int)length));
        try
        {
            stream.ReadExactly(bytes);
        }
        catch (EndOfStreamException e)
        {
            throw new InvalidDataException($"truncated while being read (it held {length} bytes when opened)", e);
        }
        return bytes;
    }

    private static void CheckSize(long length, long maxBytes)
    {
        if (length <= 0)
        {
            throw new InvalidDataException(EmptyOrSpecial);
        }
        if (length > maxBytes)
        {
            throw new InvalidDataException($"{length} bytes, more than the {maxBytes}-byte limit for such a file");
        }
    }
}
