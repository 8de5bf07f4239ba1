namespace MoCo.Deploy.Tests;

/// <summary>Paths in the repository these tests check (found by walking up to MoCo.Actors.sln).</summary>
public static class Repository
{
    private static readonly Lazy<string> RootPath = new(() =>
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "MoCo.Actors.sln")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException($"no MoCo.Actors.sln above {AppContext.BaseDirectory}");
    });

    /// <summary>The repository's root folder.</summary>
    public static string Root => RootPath.Value;

    /// <summary>A path below the root.</summary>
    public static string PathOf(params string[] parts) => Path.Combine([Root, .. parts]);

    /// <summary>Whether the tests run in CI (<c>CI=true</c>): then a missing tool fails a test instead of skipping it.</summary>
    public static bool IsCi => Environment.GetEnvironmentVariable("CI") == "true";
}
