namespace MoCo.Bench;

/// <summary>
/// Where the repository is, so that relative data and output paths mean the same thing whether the bench
/// runs from the repository root, from bench/, or as a published executable elsewhere.
/// </summary>
internal static class RepoPaths
{
    private const string Marker = "Directory.Build.props";

    /// <summary>The nearest folder holding Directory.Build.props above the working directory, else above the executable, else the working directory.</summary>
    public static string Root { get; } = Find(Environment.CurrentDirectory) ?? Find(AppContext.BaseDirectory) ?? Environment.CurrentDirectory;

    /// <summary>
    /// An absolute path for <paramref name="path"/>: absolute paths are returned as given, relative ones are taken
    /// from the repository root (so the default <c>../shared/data/...</c> names the data beside the checkout).
    /// </summary>
    public static string Resolve(string path) =>
        Path.IsPathRooted(path) ? path : Path.GetFullPath(Path.Combine(Root, path));

    /// <summary>
    /// A data spec for <see cref="MoCo.Model.Data.DataSource.Open"/>: <c>synthetic</c> and <c>synthetic:N</c> pass
    /// through, anything else is a path resolved by <see cref="Resolve"/>.
    /// </summary>
    public static string ResolveData(string spec) =>
        spec.StartsWith(MoCo.Model.Data.DataSource.SyntheticSpec, StringComparison.OrdinalIgnoreCase) ? spec : Resolve(spec);

    private static string? Find(string start)
    {
        for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, Marker)))
            {
                return dir.FullName;
            }
        }
        return null;
    }
}
