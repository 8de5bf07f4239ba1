using Akka.Actor;
using Akka.Configuration;
using Akka.TestKit;
using Akka.TestKit.Xunit2;
using Microsoft.Data.Sqlite;
using MoCo.Actors.Persistence;
using Xunit.Abstractions;

namespace MoCo.Actors.Tests.Persistence;

/// <summary>
/// Base of the specs that persist: the test kit's system journals to a SQLite file in a fresh temporary
/// directory, and further systems on the same file can be started to play a process restart.
/// </summary>
public abstract class SqliteJournalSpec : TestKit
{
    private readonly List<ActorSystem> _extraSystems = [];

    /// <summary>Starts the test kit's system on a new journal file.</summary>
    protected SqliteJournalSpec(ITestOutputHelper output)
        : this(Path.Combine(Path.GetTempPath(), "moco-actors-" + Guid.NewGuid().ToString("N")), output)
    {
    }

    private SqliteJournalSpec(string directory, ITestOutputHelper output)
        : base(SystemConfig(CreateDirectory(directory)), "moco-test", output)
    {
        Directory = directory;
    }

    /// <summary>The temporary directory holding the journal.</summary>
    protected string Directory { get; }

    /// <summary>The SQLite journal file.</summary>
    protected string JournalPath => JournalFile(Directory);

    /// <summary>Starts another actor system on the same journal (after <c>Sys</c> was terminated: a restart).</summary>
    /// <param name="name">The system's name.</param>
    protected ActorSystem StartSystem(string name)
    {
        var system = ActorSystem.Create(name, SystemConfig(Directory).WithFallback(DefaultConfig));
        _extraSystems.Add(system);
        return system;
    }

    /// <summary>Terminates a system and waits until it is gone.</summary>
    protected static async Task StopSystemAsync(ActorSystem system)
    {
        await system.Terminate().WaitAsync(TimeSpan.FromSeconds(10));
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (!disposing)
        {
            return;
        }

        foreach (var system in _extraSystems)
        {
            system.Terminate().Wait(TimeSpan.FromSeconds(10));
        }

        SqliteConnection.ClearAllPools();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
            // A file still held open by a pooled connection stays in the temp directory; nothing depends on it.
        }
    }

    private static Config SystemConfig(string directory)
    {
        return ConfigurationFactory.ParseString("akka.loglevel = WARNING")
            .WithFallback(RunJournal.Sqlite(JournalFile(directory)));
    }

    private static string CreateDirectory(string directory)
    {
        System.IO.Directory.CreateDirectory(directory);
        return directory;
    }

    private static string JournalFile(string directory)
    {
        return Path.Combine(directory, "journal.db");
    }
}
