using Akka.Actor;
using Akka.Event;

namespace MoCo.Actors.Queue;

/// <summary>
/// Keeper of a run's canonical queue (protocol: <see cref="QueueKeeper"/>): the keys, the pointer and the step that
/// wrote each slot (from the <see cref="QueueLedger"/>). At each chunk end every worker reports its replica's pointer
/// and digest; the keeper checks them against each other and the ledger, stores rank 0's keys as the canonical copy,
/// and publishes the age of the oldest key to its subscriber.
/// </summary>
public sealed class QueueKeeperActor : ReceiveActor
{
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly QueueLedger _ledger;
    private readonly IActorRef _subscriber;
    private readonly Dictionary<int, QueueKeeper.Report> _pending = [];
    private long _pendingStep = -1;
    private int _pendingGeneration = -1;
    private QueueKeeper.Report? _canonical;
    private int _worldSize;

    /// <summary>Creates the keeper; use <see cref="Props"/>.</summary>
    /// <param name="ledger">The queue's ledger.</param>
    /// <param name="worldSize">How many replicas report.</param>
    /// <param name="subscriber">Receives <see cref="QueueKeeper.Age"/> and <see cref="QueueKeeper.Inconsistent"/>.</param>
    public QueueKeeperActor(QueueLedger ledger, int worldSize, IActorRef subscriber)
    {
        _ledger = ledger;
        _worldSize = worldSize;
        _subscriber = subscriber;
        Receive<QueueKeeper.Report>(HandleReport);
        Receive<QueueKeeper.GetQueue>(_ => HandleGetQueue());
        Receive<QueueKeeper.StartGeneration>(HandleStartGeneration);
    }

    /// <summary>Props for the keeper of a queue described by <paramref name="ledger"/>.</summary>
    /// <param name="ledger">The queue's ledger.</param>
    /// <param name="worldSize">How many replicas report per step.</param>
    /// <param name="subscriber">Receives the age after each chunk and any inconsistency.</param>
    public static Props Props(QueueLedger ledger, int worldSize, IActorRef subscriber)
    {
        ArgumentNullException.ThrowIfNull(ledger);
        ArgumentOutOfRangeException.ThrowIfLessThan(worldSize, 1);
        return Akka.Actor.Props.Create(() => new QueueKeeperActor(ledger, worldSize, subscriber));
    }

    private void HandleStartGeneration(QueueKeeper.StartGeneration changed)
    {
        _worldSize = changed.WorldSize;
        _pending.Clear();
        _pendingStep = -1;
        _pendingGeneration = changed.Generation;
    }

    private void HandleReport(QueueKeeper.Report report)
    {
        if (report.Generation < _pendingGeneration)
        {
            return; // a stale generation's replica
        }

        if (report.GlobalStep != _pendingStep || report.Generation != _pendingGeneration)
        {
            _pending.Clear();
            _pendingStep = report.GlobalStep;
            _pendingGeneration = report.Generation;
        }

        _pending[report.Rank] = report;
        if (report.Keys is not null)
        {
            _canonical = report;
        }

        if (report.Pointer != _ledger.Pointer(report.GlobalStep))
        {
            Inconsistent(report.GlobalStep, $"rank {report.Rank}'s queue pointer is {report.Pointer} after {report.GlobalStep} steps; the ledger says {_ledger.Pointer(report.GlobalStep)}");
        }

        if (_pending.Count < _worldSize)
        {
            return;
        }

        var reference = _pending.OrderBy(p => p.Key).First().Value;
        var disagreeing = _pending.Values.Where(r => r.Digest != reference.Digest).Select(r => r.Rank).OrderBy(r => r).ToList();
        if (disagreeing.Count > 0)
        {
            Inconsistent(report.GlobalStep, $"the queue replicas of rank(s) {string.Join(", ", disagreeing)} differ from rank {reference.Rank}'s after step {report.GlobalStep}");
        }

        _pending.Clear();
        _subscriber.Tell(new QueueKeeper.Age(report.GlobalStep, _ledger.Filled(report.GlobalStep), _ledger.Capacity, _ledger.OldestKeyAge(report.GlobalStep)));
    }

    private void HandleGetQueue()
    {
        if (_canonical?.Keys is not { } keys)
        {
            Sender.Tell(QueueKeeper.Empty.Instance);
            return;
        }

        Sender.Tell(new QueueKeeper.Snapshot(_canonical.GlobalStep, _canonical.Pointer, keys, _canonical.Dim, _ledger.WrittenAt(_canonical.GlobalStep)));
    }

    private void Inconsistent(long step, string problem)
    {
        _log.Error("Queue: {0}", problem);
        _subscriber.Tell(new QueueKeeper.Inconsistent(step, problem));
    }
}
