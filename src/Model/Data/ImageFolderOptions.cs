namespace MoCo.Model.Data;

/// <summary>How an <see cref="ImageFolderDataset"/> loads: cache budget, parallelism, progress and a fixed class list.</summary>
public sealed record ImageFolderOptions
{
    /// <summary>
    /// Decoded images are cached in memory when their estimated size (width x height x 3, summed) fits this many bytes;
    /// otherwise the data set keeps paths or encoded bytes and decodes on demand. Null: <see cref="DefaultCacheBudgetBytes"/>.
    /// </summary>
    public long? CacheBudgetBytes { get; init; }

    /// <summary>Threads that read headers and decode at load; -1 (the default) lets the thread pool decide.</summary>
    public int MaxDegreeOfParallelism { get; init; } = -1;

    /// <summary>
    /// Called with the number of images processed so far (decoded when caching, header-checked otherwise), about every 1%
    /// and at the end. It may be called from several threads at once.
    /// </summary>
    public IProgress<int>? Progress { get; init; }

    /// <summary>
    /// Use these class names (label = index) instead of the sorted class folders, e.g. a test split labelled as its train split.
    /// A class folder not in the list is an error; a listed class without a folder simply has no images.
    /// </summary>
    public IReadOnlyList<string>? Classes { get; init; }

    /// <summary>Half of the memory available to this process (GC.GetGCMemoryInfo().TotalAvailableMemoryBytes), which respects container limits.</summary>
    public static long DefaultCacheBudgetBytes => GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 2;
}
