using MoCo.Actors.Collectives;

namespace MoCo.Actors.Workers;

/// <summary>
/// The protocol of <see cref="WorkerActor"/>: one worker per device slot, driven by its parent (the training
/// director). Every message holds scalars and arrays only; tensors travel through the collective, never here.
/// </summary>
public static class Worker
{
    /// <summary>Run steps until the global step reaches <paramref name="UpTo"/> or the epoch ends; answered by <see cref="StepsDone"/> or <see cref="WorkerFailed"/>.</summary>
    /// <param name="UpTo">The global step to stop at (exclusive bound of the steps run: the last step run is <c>UpTo - 1</c>).</param>
    public sealed record RunSteps(long UpTo) : IWireMessage;

    /// <summary>
    /// Take a checkpoint of the current state (rank 0 only): copy it into memory between two steps and hand the copy to
    /// the checkpointer, which hashes and writes it on its own thread; answered at once by <see cref="CheckpointTaken"/>
    /// (or <see cref="WorkerFailed"/>), while the checkpointer later reports the file.
    /// </summary>
    /// <param name="Epoch">The epoch the checkpoint is named after (the worker names the file in its own run directory:
    /// a path never comes from a message).</param>
    /// <param name="GlobalStep">The step the worker must be at (a command for another step is refused as stale).</param>
    /// <param name="KnnTop1Percent">The kNN top-1 of the state, when measured (the checkpointer keeps the best).</param>
    public sealed record TakeCheckpoint(int Epoch, long GlobalStep, double? KnnTop1Percent) : IWireMessage;

    /// <summary>The reply to <see cref="TakeCheckpoint"/>: the state is copied and on its way to the checkpointer.</summary>
    /// <param name="Path">The file the checkpointer will write.</param>
    /// <param name="Seconds">How long training was held up by the copy.</param>
    /// <param name="Bytes">The size of the file to be written.</param>
    public sealed record CheckpointTaken(string Path, double Seconds, long Bytes) : IWireMessage;

    /// <summary>
    /// Get ready for generation <paramref name="Generation"/> over the network and answer with <see cref="Prepared"/>. On
    /// the TCP ring: bind the data plane's listener and answer with its endpoint, which the director publishes to every
    /// rank. On NCCL: rank 0 creates the generation's unique id and answers with it; the director forwards it to every
    /// rank in <see cref="JoinGeneration"/> (and never journals it: it names rank 0's bootstrap socket of this process).
    /// </summary>
    /// <param name="Generation">The generation about to start.</param>
    /// <param name="Rank">The worker's rank in it.</param>
    public sealed record PrepareGeneration(int Generation, int Rank) : IWireMessage;

    /// <summary>The reply to <see cref="PrepareGeneration"/>.</summary>
    /// <param name="Rank">The worker's rank in the coming generation.</param>
    /// <param name="Generation">The generation.</param>
    /// <param name="Endpoint">Where its ring listener accepts its predecessor (<c>host:port</c>); null on NCCL.</param>
    /// <param name="DataPlane">The data plane the worker's process chose; every rank of a generation must choose the same.</param>
    /// <param name="NcclUniqueId">On NCCL, rank 0's new unique id for the generation (128 bytes); null otherwise.</param>
    public sealed record Prepared(int Rank, int Generation, string? Endpoint, DataPlaneKind DataPlane = DataPlaneKind.Tcp, byte[]? NcclUniqueId = null) : IWireMessage;

    /// <summary>
    /// Join generation <paramref name="Generation"/> as rank <paramref name="Rank"/> of <paramref name="WorldSize"/>:
    /// take its collective (the in-process group, the TCP ring through <paramref name="Endpoints"/>, or NCCL through
    /// <paramref name="NcclUniqueId"/>), and when
    /// <paramref name="SourceRank"/> is not negative make the state equal to that rank's by broadcast (a collective call
    /// on every rank). Answered by <see cref="Joined"/> or <see cref="WorkerFailed"/>.
    /// </summary>
    /// <param name="Generation">The generation, as recorded by the run recorder.</param>
    /// <param name="SourceRank">The rank whose state every replica takes, or -1 when the replicas are already equal.</param>
    /// <param name="Rank">This worker's rank in the generation.</param>
    /// <param name="WorldSize">The generation's number of workers.</param>
    /// <param name="Endpoints">Every rank's ring endpoint in rank order, or null for the in-process group and NCCL.</param>
    /// <param name="NcclUniqueId">The NCCL unique id rank 0 created for this generation, or null when the generation is not on NCCL.</param>
    public sealed record JoinGeneration(int Generation, int SourceRank, int Rank, int WorldSize, IReadOnlyList<string>? Endpoints, byte[]? NcclUniqueId = null) : IWireMessage;

    /// <summary>The reply to <see cref="JoinGeneration"/>: where the worker's cursor now is.</summary>
    /// <param name="Rank">The worker's rank.</param>
    /// <param name="Generation">The generation joined.</param>
    /// <param name="GlobalStep">Steps completed since the start of the run.</param>
    /// <param name="Epoch">The epoch of the next step.</param>
    /// <param name="StepInEpoch">The step within <paramref name="Epoch"/> of the next step.</param>
    public sealed record Joined(int Rank, int Generation, long GlobalStep, int Epoch, int StepInEpoch) : IWireMessage;

    /// <summary>The worker built its model (and loaded its checkpoint when resuming); sent to the parent once, at start.</summary>
    /// <param name="Rank">The worker's rank.</param>
    /// <param name="GlobalStep">Steps completed since the start of the run.</param>
    /// <param name="Epoch">The epoch of the next step.</param>
    /// <param name="StepInEpoch">The step within <paramref name="Epoch"/> of the next step.</param>
    /// <param name="StepsPerEpoch">Global batches per epoch.</param>
    /// <param name="Device">Where the worker computes: <c>cpu</c> or <c>cuda:N</c> (journaled with its generation).</param>
    public sealed record Ready(int Rank, long GlobalStep, int Epoch, int StepInEpoch, int StepsPerEpoch, string Device = "cpu") : IWireMessage;

    /// <summary>
    /// A new director takes this worker over (local: sent by the node agent that holds it, after the worker's director
    /// was lost with its process). The worker answers the new director with <see cref="Adopted"/>; from then on it
    /// accepts commands only from it. It holds an actor reference and implements no marker: no serializer sends it.
    /// </summary>
    /// <param name="Director">The director that takes the run over.</param>
    /// <param name="Rank">The rank the worker takes in the coming generation.</param>
    public sealed record Adopt(Akka.Actor.IActorRef Director, int Rank);

    /// <summary>
    /// The reply to <see cref="Adopt"/>, sent to the new director: the replica's cursor (as in <see cref="Ready"/>) and the
    /// losses of its last steps, which the previous director may not have journaled before it was lost. Every rank
    /// knows each step's loss: it is all-reduced with the gradients.
    /// </summary>
    /// <param name="Rank">The rank the worker was given.</param>
    /// <param name="Name">The worker's actor name on its node (<c>worker-N-I</c>), which keeps its id in the journal.</param>
    /// <param name="GlobalStep">Steps completed since the start of the run.</param>
    /// <param name="Epoch">The epoch of the next step.</param>
    /// <param name="StepInEpoch">The step within <paramref name="Epoch"/> of the next step.</param>
    /// <param name="StepsPerEpoch">Global batches per epoch.</param>
    /// <param name="Device">Where the worker computes.</param>
    /// <param name="Generation">The last generation the worker joined.</param>
    /// <param name="WorldSize">That generation's size.</param>
    /// <param name="Threads">The worker's torch threads (recorded with the steps it carries).</param>
    /// <param name="ConfigSha256">SHA-256 of the run configuration the worker trains with (<see cref="ConfigDigest"/>): the new director takes
    /// over only replicas of its own configuration.</param>
    /// <param name="FirstLossStep">The step of <paramref name="Losses"/>' first entry.</param>
    /// <param name="EndedEpoch">When the replica's step is an epoch's end, that epoch's report (the same on every rank, but for the kNN
    /// monitor, which only rank 0 runs), which the previous director may not have journaled.</param>
    /// <param name="Losses">The losses of the steps from <paramref name="FirstLossStep"/> to <c>GlobalStep - 1</c>, at most <see cref="MaxCarriedLosses"/>.</param>
    public sealed record Adopted(int Rank, string Name, long GlobalStep, int Epoch, int StepInEpoch, int StepsPerEpoch, string Device, int Generation, int WorldSize,
        int Threads, string ConfigSha256, long FirstLossStep, double[] Losses, EpochDone? EndedEpoch = null) : IWireMessage;

    /// <summary>The SHA-256 (lowercase hex) of <paramref name="config"/> as JSON, which a worker carries in <see cref="Adopted"/>.</summary>
    /// <param name="config">A run configuration.</param>
    public static string ConfigDigest(MoCo.Model.Training.RunConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(config.ToJson())));
    }

    /// <summary>How many of its last steps' losses a worker keeps for a director that takes it over.</summary>
    public const int MaxCarriedLosses = 1024;

    /// <summary>Rank 0 finished one step (sent after every step, for progress displays).</summary>
    /// <param name="GlobalStep">The global step just completed (0-based).</param>
    /// <param name="Epoch">Its epoch.</param>
    /// <param name="StepInEpoch">Its step within the epoch (0-based).</param>
    /// <param name="StepsPerEpoch">Global batches per epoch.</param>
    /// <param name="Loss">The step's contrastive loss.</param>
    /// <param name="InstanceAccuracy">The step's instance-discrimination accuracy in [0, 1].</param>
    /// <param name="LearningRate">The step's learning rate.</param>
    /// <param name="AllReduceWaitSeconds">How long rank 0 waited after backward for the step's all-reduce (what overlap did not hide); 0 in a world of one.</param>
    public sealed record StepCompleted(long GlobalStep, int Epoch, int StepInEpoch, int StepsPerEpoch, double Loss, double InstanceAccuracy, double LearningRate, double AllReduceWaitSeconds = 0) : IWireMessage;

    /// <summary>The reply to <see cref="RunSteps"/>: where the worker's cursor now is.</summary>
    /// <param name="Rank">The worker's rank.</param>
    /// <param name="GlobalStep">Steps completed since the start of the run.</param>
    /// <param name="Epoch">The epoch of the next step (equal to the run's epochs once it has finished).</param>
    /// <param name="StepInEpoch">The step within <paramref name="Epoch"/> of the next step.</param>
    /// <param name="Loss">The last step's loss (NaN when no step ran).</param>
    /// <param name="LearningRate">The last step's learning rate (NaN when no step ran).</param>
    /// <param name="ImagesPerSecond">Global images per second over the steps of this command.</param>
    /// <param name="Digest">Rank 0: the digest of its whole state after the chunk (MoCo.Model.Training.StateDigest); others: null.</param>
    /// <param name="Checksums">Rank 0: each state tensor's checksum, with the digest.</param>
    /// <param name="Threads">The worker's torch threads.</param>
    public sealed record StepsDone(int Rank, long GlobalStep, int Epoch, int StepInEpoch, double Loss, double LearningRate, double ImagesPerSecond,
        string? Digest = null, long[]? Checksums = null, int Threads = 1) : IWireMessage;

    /// <summary>Rank 0 finished an epoch (sent before its <see cref="StepsDone"/>); the fields of an epoch report.</summary>
    /// <param name="Epoch">The epoch that ended.</param>
    /// <param name="GlobalStep">The global step at its end.</param>
    /// <param name="Steps">Steps of the epoch run by this worker since it started (fewer than an epoch after a mid-epoch resume).</param>
    /// <param name="Loss">Mean loss over those steps.</param>
    /// <param name="InstanceAccuracy">Mean instance-discrimination accuracy in [0, 1].</param>
    /// <param name="LearningRate">The learning rate of the epoch's last step.</param>
    /// <param name="KnnTop1Percent">kNN monitor top-1 in percent, or null when it did not run this epoch.</param>
    /// <param name="KnnTop5Percent">kNN monitor top-5 in percent, or null when it did not run this epoch.</param>
    /// <param name="Seconds">Wall-clock seconds of the epoch, kNN included.</param>
    /// <param name="ImagesPerSecond">Global images per second of training (kNN excluded).</param>
    /// <param name="LoaderWaitSeconds">Seconds this worker waited on its data loader.</param>
    /// <param name="KnnSeconds">Seconds of the kNN monitor (included in <paramref name="Seconds"/>), or null when it did not run.</param>
    public sealed record EpochDone(int Epoch, long GlobalStep, int Steps, double Loss, double InstanceAccuracy, double LearningRate, double? KnnTop1Percent, double? KnnTop5Percent, double Seconds, double ImagesPerSecond, double LoaderWaitSeconds,
        double? KnnSeconds = null) : IWireMessage;

    /// <summary>Rank 0 evaluated the random encoder with the kNN monitor before the first step.</summary>
    /// <param name="Top1Percent">Top-1 in percent.</param>
    /// <param name="Top5Percent">Top-5 in percent.</param>
    public sealed record KnnEvaluated(double Top1Percent, double Top5Percent) : IWireMessage;

    /// <summary>The worker failed; its state can no longer be trusted and it must be stopped.</summary>
    /// <param name="Rank">The worker's rank.</param>
    /// <param name="Operation">What it was doing: starting, training, evaluating kNN, writing a checkpoint.</param>
    /// <param name="GlobalStep">Its global step when it failed (the failing step left no trace).</param>
    /// <param name="Epoch">Its epoch.</param>
    /// <param name="StepInEpoch">Its step within the epoch.</param>
    /// <param name="Error">The exception's type and message.</param>
    /// <param name="FirstFailure">Whether it was the first rank of its group to fail (the others failed because the group was aborted).</param>
    public sealed record WorkerFailed(int Rank, string Operation, long GlobalStep, int Epoch, int StepInEpoch, string Error, bool FirstFailure) : IWireMessage;
}
