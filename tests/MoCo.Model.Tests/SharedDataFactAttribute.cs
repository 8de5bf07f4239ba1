namespace MoCo.Model.Tests;

/// <summary>
/// A fact that needs a file from the shared data folder (../shared/data from the repository root, which is found by
/// walking up from the test binaries to the folder holding MoCo.Actors.sln). When the file is absent the test is
/// skipped, with a reason that names the path.
/// </summary>
public sealed class SharedDataFactAttribute : FactAttribute
{
    /// <summary>Skips the fact unless <paramref name="fileName"/> exists in the shared data folder.</summary>
    public SharedDataFactAttribute(string fileName)
    {
        string? path = SharedDataPath(fileName);
        if (path is null || !File.Exists(path))
        {
            Skip = $"Shared data file '{path ?? fileName}' is absent (expected at ../shared/data/ beside the repository root).";
        }
    }

    /// <summary>The full path of a shared data file, or null when the repository root cannot be found.</summary>
    public static string? SharedDataPath(string fileName)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "MoCo.Actors.sln")))
            {
                return Path.GetFullPath(Path.Combine(dir.FullName, "..", "shared", "data", fileName));
            }
        }
        return null;
    }
}
