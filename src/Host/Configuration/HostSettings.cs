using MoCo.Model.Training;

namespace MoCo.Host.Configuration;

/// <summary>The <c>moco.host</c> section: how this process runs, not what the run is.</summary>
public sealed record HostSettings
{
    /// <summary>Evaluate the kNN monitor before the first step.</summary>
    public bool KnnAtStart { get; init; }

    /// <summary>Torch compute threads (0: one per core).</summary>
    public int Threads { get; init; }

    /// <summary>Background image threads (0: automatic).</summary>
    public int LoaderThreads { get; init; }

    /// <summary>
    /// MiB of decoded images an image folder or archive may cache in memory; beyond it images are decoded on demand
    /// (0: always on demand; -1: half of the memory available to the process, container limits included). Shards are
    /// always streamed and never cached.
    /// </summary>
    public int ImageCacheMib { get; init; } = -1;

    /// <summary>The cache budget in bytes for <see cref="MoCo.Model.Data.DataSourceOptions.CacheBudgetBytes"/>; null: automatic.</summary>
    public long? ImageCacheBytes => ImageCacheMib < 0 ? null : (long)ImageCacheMib << 20;

    /// <summary>Seconds a collective waits for a peer (a dead or frozen worker) before the generation is declared broken.</summary>
    public int CollectiveTimeoutSeconds { get; init; } = 300;

    /// <summary>
    /// Seconds a node keeps its workers, after the process running their director was lost while a standby trainer is Up,
    /// for the director that takes the run over (<c>moco.host.takeover-wait-seconds</c>); then they stop. At least 1.
    /// </summary>
    public int TakeoverWaitSeconds { get; init; } = 60;

    /// <summary><see cref="TakeoverWaitSeconds"/> as a time span.</summary>
    public TimeSpan TakeoverWait => TimeSpan.FromSeconds(TakeoverWaitSeconds);

    /// <summary>
    /// Where the workers compute: <c>auto</c> (CUDA when libtorch sees enough CUDA devices for the local workers, else the
    /// CPU), <c>cpu</c> or <c>cuda</c> (local worker i on <c>cuda:i</c>; an error naming what is missing without them).
    /// A property of this process, not of the run (checkpoints do not record it).
    /// </summary>
    public string Device { get; init; } = "auto";

    /// <summary>
    /// Gradient buckets in MiB, all-reduced while backward runs ("off" or 0: one flat all-reduce after backward). How
    /// gradients travel, never what is computed: not part of the run's definition.
    /// </summary>
    public string BucketMib { get; init; } = "25";

    /// <summary>
    /// Check the network's layers against float64 on this machine before training (and in every worker before its first
    /// step); false skips it (at the risk of wrong results on a machine whose kernels are wrong).
    /// </summary>
    public bool NumericsCheck { get; init; } = true;

    /// <summary>
    /// Write TensorBoard event files under each run directory's <c>tb/</c> (<c>moco.host.tensorboard</c>; the key is one
    /// word, as the tool's name).
    /// </summary>
    public bool Tensorboard { get; init; } = true;

    /// <summary>
    /// What <c>moco train --continue</c> does when its run directory holds a run that has already completed: true (the
    /// default) says so and waits for SIGTERM, for a StatefulSet pod, which the kubelet would restart after any exit;
    /// false says so and exits 0, for a Job's pod (k8s/job), whose Job ends when it does. A property of this process
    /// (how its pod is run), not of the run.
    /// </summary>
    public bool IdleWhenComplete { get; init; } = true;

    /// <summary>Folder under which new run directories are created.</summary>
    public string RunsRoot { get; init; } = "runs";

    /// <summary><see cref="BucketMib"/> read.</summary>
    /// <exception cref="ArgumentException">Neither "off" nor a number of MiB ≥ 0.</exception>
    public GradientBucketing Bucketing => GradientBucketing.Parse(BucketMib);

    /// <summary>Checks what cannot be checked by type; returns this.</summary>
    /// <exception cref="ArgumentException">A setting out of range, named.</exception>
    public HostSettings Validate()
    {
        _ = Bucketing;
        if (ImageCacheMib < -1)
        {
            throw new ArgumentException($"moco.host.image-cache-mib must be -1 (automatic), 0 (decode on demand) or a size in MiB, not {ImageCacheMib}");
        }
        if (TakeoverWaitSeconds < 1)
        {
            throw new ArgumentException($"moco.host.takeover-wait-seconds must be at least 1 (a node keeps its workers that long for a standby to take them over), not {TakeoverWaitSeconds}");
        }
        return this;
    }

    public int EffectiveThreads => Threads > 0 ? Threads : Environment.ProcessorCount;

    public int EffectiveLoaderThreads => LoaderThreads > 0 ? LoaderThreads : Math.Max(1, Environment.ProcessorCount / 2);

    /// <summary>The loader threads of each of <paramref name="workers"/> workers of this process (at least one).</summary>
    public int LoaderThreadsPerWorker(int workers) => Math.Max(1, EffectiveLoaderThreads / Math.Max(1, workers));
}
