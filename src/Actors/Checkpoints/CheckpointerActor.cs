using System.Diagnostics;
using Akka.Actor;
using Akka.Event;
using MoCo.Model.Checkpoints;

namespace MoCo.Actors.Checkpoints;

/// <summary>
/// Writes the checkpoints of one run (protocol: <see cref="Checkpointer"/>) on its own pinned thread, so hashing and
/// writing never hold up a worker: rank 0 only copies its state into a <see cref="CheckpointImage"/> between two steps.
/// Writes happen one at a time in the order they were asked for. After each write it prunes the run's checkpoint
/// directory to the last <c>keep</c> files plus the best by kNN top-1 seen so far.
/// </summary>
public sealed class CheckpointerActor : ReceiveActor
{
    /// <summary>The dispatcher the checkpointer runs on (see <see cref="DispatcherHocon"/>).</summary>
    public const string DispatcherId = "akka.actor.moco-checkpoint-dispatcher";

    /// <summary>The HOCON that defines <see cref="DispatcherId"/>.</summary>
    public const string DispatcherHocon = """
        akka.actor.moco-checkpoint-dispatcher {
          # its own thread: a checkpoint write (hash, write, fsync) must not take a thread from the actors
          type = PinnedDispatcher
        }
        """;

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly CheckpointDirectory _directory;
    private readonly int _keep;
    private string? _bestPath;
    private double _bestTop1 = double.NegativeInfinity;

    /// <summary>Creates the checkpointer; use <see cref="Props"/>.</summary>
    /// <param name="runDirectory">The run directory (checkpoints go to its checkpoint folder).</param>
    /// <param name="keep">How many of the latest checkpoints to keep (0 keeps all).</param>
    public CheckpointerActor(string runDirectory, int keep)
    {
        _directory = new CheckpointDirectory(runDirectory);
        _keep = keep;
        Receive<Checkpointer.Write>(HandleWrite);
    }

    /// <summary>Props for the checkpointer of the run in <paramref name="runDirectory"/>, on <see cref="DispatcherId"/>.</summary>
    /// <param name="runDirectory">The run directory.</param>
    /// <param name="keep">How many of the latest checkpoints to keep (0 keeps all); the best by kNN is kept as well.</param>
    /// <param name="dispatcher">The dispatcher; null for <see cref="DispatcherId"/>.</param>
    public static Props Props(string runDirectory, int keep, string? dispatcher = DispatcherId)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(runDirectory);
        ArgumentOutOfRangeException.ThrowIfNegative(keep);
        var props = Akka.Actor.Props.Create(() => new CheckpointerActor(runDirectory, keep));
        return dispatcher is null ? props : props.WithDispatcher(dispatcher);
    }

    private void HandleWrite(Checkpointer.Write write)
    {
        var header = write.Image.Header;
        var clock = Stopwatch.StartNew();
        string sha;
        try
        {
            sha = write.Image.WriteTo(write.Path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException)
        {
            _log.Error(e, "Checkpoint {0} could not be written", write.Path);
            write.ReplyTo.Tell(new Checkpointer.WriteFailed(write.Path, header.Step, $"{e.GetType().Name}: {e.Message}"));
            return;
        }

        double seconds = clock.Elapsed.TotalSeconds;
        if (write.KnnTop1Percent is { } top1 && top1 > _bestTop1)
        {
            _bestTop1 = top1;
            _bestPath = write.Path;
        }

        IReadOnlyList<string> pruned = [];
        try
        {
            if (_keep > 0)
            {
                pruned = _directory.Prune(_keep, _bestPath is null ? null : [_bestPath]);
            }
        }
        catch (IOException e)
        {
            _log.Warning("Could not prune old checkpoints: {0}", e.Message);
        }

        write.ReplyTo.Tell(new Checkpointer.Written(write.Path, sha, seconds, write.Image.FileLength, header.Epoch, header.Step, pruned));
    }
}
