using System.Globalization;
using System.Text.RegularExpressions;

namespace MoCo.Model.Checkpoints;

/// <summary>
/// The checkpoints of one run: <c>{runDir}/checkpoints/ckpt-e{epoch:0000}-s{step:00000000}.mocockpt</c>,
/// ordered by (epoch, step). Finds the newest valid one and prunes old ones.
/// </summary>
public sealed partial class CheckpointDirectory
{
    /// <summary>The folder, inside a run directory, that holds the checkpoints.</summary>
    public const string FolderName = "checkpoints";

    /// <summary>The extension of checkpoint files.</summary>
    public const string Extension = ".mocockpt";

    /// <summary>The checkpoints of the run in <paramref name="runDir"/> (the folder need not exist yet).</summary>
    public CheckpointDirectory(string runDir)
    {
        ArgumentException.ThrowIfNullOrEmpty(runDir);
        RunDir = Path.GetFullPath(runDir);
        Folder = Path.Combine(RunDir, FolderName);
    }

    /// <summary>The run directory.</summary>
    public string RunDir { get; }

    /// <summary>The checkpoint folder, <c>{RunDir}/checkpoints</c>.</summary>
    public string Folder { get; }

    /// <summary>Where the checkpoint taken at <paramref name="epoch"/> and <paramref name="step"/> goes.</summary>
    public string PathFor(int epoch, long step)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(epoch);
        ArgumentOutOfRangeException.ThrowIfNegative(step);
        return Path.Combine(Folder, FileName(epoch, step));
    }

    /// <summary>The file name of the checkpoint at <paramref name="epoch"/> and <paramref name="step"/>.</summary>
    public static string FileName(int epoch, long step) =>
        string.Create(CultureInfo.InvariantCulture, $"ckpt-e{epoch:0000}-s{step:00000000}{Extension}");

    /// <summary>Reads epoch and step back from a checkpoint file name; false for any other file.</summary>
    public static bool TryParseFileName(string fileName, out int epoch, out long step)
    {
        var match = NamePattern().Match(Path.GetFileName(fileName));
        epoch = 0;
        step = 0;
        return match.Success
            && int.TryParse(match.Groups[1].ValueSpan, NumberStyles.None, CultureInfo.InvariantCulture, out epoch)
            && long.TryParse(match.Groups[2].ValueSpan, NumberStyles.None, CultureInfo.InvariantCulture, out step);
    }

    /// <summary>The checkpoint files present, oldest first by (epoch, step); temporary files are not listed.</summary>
    public IReadOnlyList<string> List()
    {
        if (!Directory.Exists(Folder))
        {
            return [];
        }
        return Directory.EnumerateFiles(Folder, "ckpt-*" + Extension)
            .Select(path => (path, ok: TryParseFileName(path, out int epoch, out long step), epoch, step))
            .Where(x => x.ok)
            .OrderBy(x => x.epoch)
            .ThenBy(x => x.step)
            .Select(x => x.path)
            .ToList();
    }

    /// <summary>
    /// The newest checkpoint of <paramref name="runId"/> that passes verification (the whole file is
    /// hashed; tensors are not loaded). Newer files that fail are skipped and reported with their reason,
    /// so a corrupt newest checkpoint falls back to the previous valid one.
    /// </summary>
    public LatestCheckpoint Latest(string runId)
    {
        ArgumentNullException.ThrowIfNull(runId);
        var skipped = new List<SkippedCheckpoint>();
        var files = List();
        for (int i = files.Count - 1; i >= 0; i--)
        {
            try
            {
                return new LatestCheckpoint(CheckpointFile.Verify(files[i], runId), skipped);
            }
            catch (CheckpointRejectedException e)
            {
                skipped.Add(new SkippedCheckpoint(files[i], e.Reason));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                skipped.Add(new SkippedCheckpoint(files[i], $"unreadable: {e.Message}"));
            }
        }
        return new LatestCheckpoint(null, skipped);
    }

    /// <summary>The newest valid checkpoint of <paramref name="runId"/> in run directory <paramref name="runDir"/>; see <see cref="Latest(string)"/>.</summary>
    public static LatestCheckpoint Latest(string runDir, string runId) => new CheckpointDirectory(runDir).Latest(runId);

    /// <summary>
    /// Deletes all but the newest <paramref name="keepLast"/> checkpoint files (by name order, valid or not),
    /// never deleting one listed in <paramref name="keepPaths"/> (e.g. the best by kNN, or the newest valid
    /// one when newer files may be corrupt). Temporary files are left alone.
    /// </summary>
    /// <returns>The deleted files.</returns>
    public IReadOnlyList<string> Prune(int keepLast, IEnumerable<string>? keepPaths = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(keepLast);
        var keep = new HashSet<string>((keepPaths ?? []).Select(Path.GetFullPath), StringComparer.Ordinal);
        var files = List();
        var deleted = new List<string>();
        for (int i = 0; i < files.Count - keepLast; i++)
        {
            if (keep.Contains(Path.GetFullPath(files[i])))
            {
                continue;
            }
            File.Delete(files[i]);
            deleted.Add(files[i]);
        }
        return deleted;
    }

    [GeneratedRegex(@"^ckpt-e(\d+)-s(\d+)\.mocockpt$", RegexOptions.CultureInvariant)]
    private static partial Regex NamePattern();
}
