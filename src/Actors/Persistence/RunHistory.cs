using Akka.Actor;
using Akka.Configuration;
using Akka.Persistence.Query;
using Akka.Persistence.Sql.Query;
using Akka.Streams;
using Akka.Streams.Dsl;
using MoCo.Actors.Run;

namespace MoCo.Actors.Persistence;

/// <summary>
/// The read side of the run journal: which runs it holds, and any run's events and state, rebuilt by replaying
/// the journal through <see cref="RunState.Apply"/> (what <c>moco history</c> shows). Reads only; never writes.
/// </summary>
public sealed class RunHistory : IAsyncDisposable
{
    private const string RunPrefix = "run-";

    private readonly ActorSystem _system;
    private readonly bool _ownsSystem;
    private readonly SqlReadJournal _readJournal;
    private readonly ActorMaterializer _materializer;

    /// <summary>Reads through an actor system already configured with <see cref="RunJournal"/>.</summary>
    /// <param name="system">The system; it stays the caller's to terminate.</param>
    public RunHistory(ActorSystem system)
        : this(system, ownsSystem: false)
    {
    }

    private RunHistory(ActorSystem system, bool ownsSystem)
    {
        ArgumentNullException.ThrowIfNull(system);
        _system = system;
        _ownsSystem = ownsSystem;
        _readJournal = PersistenceQuery.Get(system).ReadJournalFor<SqlReadJournal>(RunJournal.ReadJournalPluginId);
        _materializer = system.Materializer();
    }

    /// <summary>Opens the SQLite journal at <paramref name="databasePath"/> in a small actor system of its own.</summary>
    /// <param name="databasePath">The journal file.</param>
    /// <returns>The history; dispose it to terminate its actor system.</returns>
    /// <exception cref="FileNotFoundException">There is no journal at that path.</exception>
    public static RunHistory OpenSqlite(string databasePath)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(databasePath);
        if (!File.Exists(databasePath))
        {
            throw new FileNotFoundException($"No run journal at '{databasePath}'.", databasePath);
        }

        var config = ConfigurationFactory.ParseString("akka.loglevel = WARNING")
            .WithFallback(RunJournal.Sqlite(databasePath));
        var system = ActorSystem.Create("moco-history", config);
        return new RunHistory(system, ownsSystem: true);
    }

    /// <summary>
    /// Opens the journal the way the <c>moco</c> commands name it (<see cref="RunJournal.ForLocation"/>): a run directory,
    /// a SQLite file, or a PostgreSQL connection string.
    /// </summary>
    /// <param name="journal">The run directory, journal file or connection string.</param>
    /// <returns>The history; dispose it to terminate its actor system.</returns>
    /// <exception cref="FileNotFoundException">A SQLite journal was named and does not exist.</exception>
    public static RunHistory Open(string journal)
    {
        var config = ConfigurationFactory.ParseString("akka.loglevel = WARNING")
            .WithFallback(RunJournal.ForLocation(journal));
        var system = ActorSystem.Create("moco-history", config);
        return new RunHistory(system, ownsSystem: true);
    }

    /// <summary>The ids of the runs in the journal (persistence ids <c>run-{id}</c>), in ordinal order.</summary>
    /// <param name="cancellationToken">Stops waiting for the query.</param>
    public async Task<IReadOnlyList<string>> ListRunIdsAsync(CancellationToken cancellationToken = default)
    {
        var ids = await _readJournal.CurrentPersistenceIds()
            .Where(id => id.StartsWith(RunPrefix, StringComparison.Ordinal))
            .Select(id => id[RunPrefix.Length..])
            .RunWith(Sink.Seq<string>(), _materializer)
            .WaitAsync(cancellationToken);
        return ids.Order(StringComparer.Ordinal).ToList();
    }

    /// <summary>A run's events as journaled, oldest first.</summary>
    /// <param name="runId">The run's identity.</param>
    /// <param name="cancellationToken">Stops waiting for the query.</param>
    public async Task<IReadOnlyList<IRunEvent>> ReadEventsAsync(string runId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(runId);
        var envelopes = await _readJournal
            .CurrentEventsByPersistenceId(RunRecorderActor.PersistenceIdFor(runId), 0L, long.MaxValue)
            .RunWith(Sink.Seq<EventEnvelope>(), _materializer)
            .WaitAsync(cancellationToken);
        return envelopes.Select(envelope => envelope.Event).OfType<IRunEvent>().ToList();
    }

    /// <summary>Rebuilds a run's state by replaying all its events from the start (snapshots are not used).</summary>
    /// <param name="runId">The run's identity.</param>
    /// <param name="cancellationToken">Stops waiting for the query.</param>
    /// <returns>The state; <see cref="RunState.Empty"/> for a run the journal does not hold.</returns>
    /// <exception cref="InvalidOperationException">The journal holds a history that <see cref="RunState.Apply"/> refuses.</exception>
    public async Task<RunState> ReplayAsync(string runId, CancellationToken cancellationToken = default)
    {
        var events = await ReadEventsAsync(runId, cancellationToken);
        return RunState.Empty.ApplyAll(events);
    }

    /// <summary>Stops the stream materializer and, when this history opened it, its actor system.</summary>
    public async ValueTask DisposeAsync()
    {
        _materializer.Dispose();
        if (_ownsSystem)
        {
            await _system.Terminate();
        }
    }
}
