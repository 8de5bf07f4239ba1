using MoCo.Actors.Collectives;
using MoCo.Actors.Collectives.Nccl;
using MoCo.Model.Collectives;
using MoCo.Model.Data;
using MoCo.Model.Training;

namespace MoCo.Actors.Training;

/// <summary>
/// What a training director needs to run one run on this process: the run, its data and how to split the
/// machine between the workers. Handed to <see cref="TrainingDirectorActor.Props"/> as a local object (it holds
/// the open data set), never sent as a message.
/// </summary>
/// <param name="Config">The run's configuration.</param>
/// <param name="RunId">The run's identity (the recorder's persistence id is <c>run-{RunId}</c>).</param>
/// <param name="RunDirectory">The run directory: checkpoints, metrics.csv (the journal is configured on the actor system).</param>
/// <param name="Data">The opened data set, shared read-only by the workers.</param>
/// <param name="Devices">The number of in-process workers (world size).</param>
public sealed record TrainingSettings(RunConfig Config, string RunId, string RunDirectory, DatasetSplits Data, int Devices)
{
    /// <summary>CPU cores the workers share; each worker gets <see cref="ThreadsPerWorker"/> torch threads.</summary>
    public int Threads { get; init; } = Environment.ProcessorCount;

    /// <summary>Data loader threads per worker.</summary>
    public int LoaderThreads { get; init; } = 1;

    /// <summary>Evaluate the random encoder with the kNN monitor before the first step.</summary>
    public bool KnnAtStart { get; init; }

    /// <summary>The checkpoint every worker loads before its first step, or null to start from scratch.</summary>
    public string? ResumeFrom { get; init; }

    /// <summary>At most this many steps per <see cref="Workers.Worker.RunSteps"/> (an interrupt waits for the chunk to end).</summary>
    public int ChunkSteps { get; init; } = 50;

    /// <summary>How long a collective waits for a peer before the group is declared broken.</summary>
    public TimeSpan CollectiveTimeout { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>How each worker's gradients travel (buckets overlapped with backward, or one flat all-reduce).</summary>
    public GradientBucketing Bucketing { get; init; } = GradientBucketing.Default;

    /// <summary>
    /// Whether each worker checks its network's layers against float64 before its first step (once per process and
    /// setting, MoCo.Model.Diagnostics.NumericsGate); a failure fails the worker with the layer named.
    /// </summary>
    public bool NumericsCheck { get; init; } = true;

    /// <summary>
    /// How long a member of the cluster (any role) has to prove it holds the cluster's secret before it is downed: a
    /// process with the cluster's certificate but not its secret is in the cluster for at most this long.
    /// </summary>
    public TimeSpan MemberProofTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How many times in a row failed workers are re-created before the run is failed; the count starts again after
    /// every chunk of steps that completes. 0 fails the run at the first worker failure.
    /// </summary>
    public int MaxWorkerRestarts { get; init; } = 3;

    /// <summary>The wait before the first re-creation after a failure; it doubles with each further failure in a row.</summary>
    public TimeSpan RestartBackoffMin { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>The longest wait before a re-creation.</summary>
    public TimeSpan RestartBackoffMax { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Whether the director writes TensorBoard event files under <c>tb/</c> in <see cref="RunDirectory"/>
    /// (<see cref="TensorBoardActor"/>).
    /// </summary>
    public bool TensorBoard { get; init; } = true;

    /// <summary>How long the director waits for the run journal to acknowledge a command before it stops the run.</summary>
    public TimeSpan JournalTimeout { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>
    /// Whether the run may span processes: the director then accepts workers of other cluster nodes (their agents
    /// offer devices), forms every generation over the TCP ring, and takes nodes in and out between chunks.
    /// </summary>
    public bool Elastic { get; init; }

    /// <summary>In an elastic run, the workers (this node's included) that must be offered before training starts.</summary>
    public int MinWorkers { get; init; } = 1;

    /// <summary>The network data plane of this node's workers, used when the run spans processes.</summary>
    public RingSettings DataPlane { get; init; } = RingSettings.Loopback;

    /// <summary>
    /// Where this process's workers compute: on <see cref="ComputeDevice.Cuda"/> the worker of local slot i uses
    /// <c>cuda:i</c>. A property of the process (<c>moco.host.device</c>), never of the run: checkpoints do not record it.
    /// </summary>
    public ComputeDevice Device { get; init; } = ComputeDevice.Cpu;

    /// <summary>
    /// The data plane this process's workers use when a generation goes over the network. <see cref="DataPlaneKind.Nccl"/>
    /// makes every generation an NCCL communicator, also in a run of one process (rank 0 creates the unique id, the
    /// director forwards it); <see cref="DataPlaneKind.Tcp"/> keeps the in-process group for a single process and
    /// the TCP ring across processes. Chosen at start-up by the host (<c>moco.data-plane.backend</c>).
    /// </summary>
    public DataPlaneKind Backend { get; init; } = DataPlaneKind.Tcp;

    /// <summary>How workers make NCCL communicators when <see cref="Backend"/> is NCCL; tests give a double.</summary>
    public INcclCommunicators Nccl { get; init; } = NativeNcclCommunicators.Instance;

    /// <summary>The node name recorded for the workers.</summary>
    public string Node { get; init; } = Environment.MachineName;

    /// <summary>
    /// Wraps each rank's collective (rank, collective → collective): instrumentation and fault injection in tests.
    /// Null leaves the collectives as they are.
    /// </summary>
    public Func<int, ICollective, ICollective>? WrapCollective { get; init; }

    /// <summary>Torch intra-op threads per worker: the cores split evenly, at least one, never more than the cores in total.</summary>
    public int ThreadsPerWorker => Math.Max(1, Threads / Math.Max(1, Devices));

    /// <summary>Throws with a message naming the first unusable setting.</summary>
    /// <returns>This.</returns>
    public TrainingSettings Validate()
    {
        Config.Validate();
        ArgumentException.ThrowIfNullOrWhiteSpace(RunId);
        ArgumentException.ThrowIfNullOrWhiteSpace(RunDirectory);
        if (Devices < 1)
        {
            throw new ArgumentException($"--devices must be at least 1, not {Devices}");
        }

        if (Devices > Config.BnSplits)
        {
            throw new ArgumentException($"--devices {Devices} exceeds --bn-splits {Config.BnSplits}: each worker needs at least one whole BN group");
        }

        if (MaxWorkerRestarts < 0)
        {
            throw new ArgumentException($"max worker restarts must not be negative, not {MaxWorkerRestarts}");
        }

        if (RestartBackoffMin < TimeSpan.Zero || RestartBackoffMax < RestartBackoffMin)
        {
            throw new ArgumentException($"restart backoff must satisfy 0 <= min ({RestartBackoffMin}) <= max ({RestartBackoffMax})");
        }

        if (ChunkSteps < 1)
        {
            throw new ArgumentException($"chunk steps must be at least 1, not {ChunkSteps}");
        }

        return this;
    }
}
