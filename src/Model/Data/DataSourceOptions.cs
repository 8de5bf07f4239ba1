namespace MoCo.Model.Data;

/// <summary>How <see cref="DataSource.Open"/> loads a data set.</summary>
public sealed record DataSourceOptions
{
    /// <summary>Bytes of decoded images that train and test together may cache; null: <see cref="ImageFolderOptions.DefaultCacheBudgetBytes"/>.</summary>
    public long? CacheBudgetBytes { get; init; }

    /// <summary>Threads that decode at load; -1 (the default) lets the thread pool decide.</summary>
    public int MaxDegreeOfParallelism { get; init; } = -1;

    /// <summary>Images processed so far, counted across the train and then the test split; may be called from several threads.</summary>
    public IProgress<int>? Progress { get; init; }

    /// <summary>Seed of the synthetic data set.</summary>
    public ulong SyntheticSeed { get; init; }

    /// <summary>Train images of the synthetic data set when the spec is plain <c>synthetic</c>.</summary>
    public int SyntheticTrainCount { get; init; } = SyntheticTexturesDataset.DefaultTrainCount;

    /// <summary>Test images of the synthetic data set.</summary>
    public int SyntheticTestCount { get; init; } = SyntheticTexturesDataset.DefaultTestCount;

    /// <summary>The options a run's configuration implies: its seed (synthetic data) and its shard sizes.</summary>
    public static DataSourceOptions For(Training.RunConfig config) => new()
    {
        SyntheticSeed = config.Seed,
        Shards = new Shards.ShardOptions((long)config.ShardShuffleMib << 20, (long)config.ShardReadAheadMib << 20),
    };

    /// <summary>Shuffle buffer and read-ahead of a shard data set.</summary>
    public Shards.ShardOptions Shards { get; init; } = Data.Shards.ShardOptions.Default;
}
