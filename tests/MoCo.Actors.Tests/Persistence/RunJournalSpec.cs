using Akka.Actor;
using Akka.Serialization;
using Microsoft.Data.Sqlite;
using MoCo.Actors.Persistence;
using MoCo.Actors.Run;
using MoCo.Actors.Tests.Run;
using Xunit.Abstractions;

namespace MoCo.Actors.Tests.Persistence;

/// <summary>What <see cref="RunJournal"/> configures: Hyperion for our types, rows in the SQLite file.</summary>
public sealed class RunJournalSpec : SqliteJournalSpec
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(5);

    public RunJournalSpec(ITestOutputHelper output)
        : base(output)
    {
    }

    [Fact]
    public void Our_events_and_snapshots_must_be_bound_to_Hyperion()
    {
        Assert.IsAssignableFrom<HyperionSerializer>(Sys.Serialization.FindSerializerForType(typeof(RunStarted)));
        Assert.IsAssignableFrom<HyperionSerializer>(Sys.Serialization.FindSerializerForType(typeof(RunState)));
        // the recorder's commands come from the director on the same node: no serializer would send them anywhere
        Assert.ThrowsAny<Exception>(() => Sys.Serialization.FindSerializerForType(typeof(RunRecorder.StartRun)));
    }

    [Fact]
    public void Hyperion_must_round_trip_a_full_run_state()
    {
        var state = RunState.Empty.ApplyAll(
        [
            new RunStarted("r1", "{}", DateTimeOffset.UtcNow),
            new WorkerJoined(RunScript.W0),
            new WorkerJoined(RunScript.W1),
            new GenerationStarted(1, [RunScript.W1, RunScript.W0], 0),
            new EpochCompleted(0, 100, RunScript.Metrics(7.0, knn: 0.2)),
            new CheckpointSaved("/c.pt", new string('0', 64), 0, 100),
        ]);
        var serializer = Sys.Serialization.FindSerializerFor(state);

        var copy = (RunState)serializer.FromBinary(serializer.ToBinary(state), typeof(RunState));

        Assert.Equal(state, copy);
    }

    [Fact]
    public async Task Events_and_snapshots_must_land_in_the_sqlite_file_as_Hyperion()
    {
        var recorder = Sys.ActorOf(RunRecorderActor.Props("r1", new RunRecorderSettings(SnapshotEvery: 2)));
        foreach (var command in RunScript.Commands("r1").Take(4))
        {
            recorder.Tell(command, TestActor);
            await ExpectMsgAsync<RunRecorder.Ack>(Wait);
        }

        var hyperionId = Sys.Serialization.FindSerializerForType(typeof(RunStarted)).Identifier;
        await using var connection = new SqliteConnection(RunJournal.SqliteConnectionString(JournalPath));
        await connection.OpenAsync();
        Assert.Equal([(long)hyperionId], await ColumnAsync(connection, "SELECT DISTINCT identifier FROM journal"));
        Assert.Equal([4L], await ColumnAsync(connection, "SELECT MAX(sequence_number) FROM journal WHERE persistence_id = 'run-r1'"));
        await AwaitAssertAsync(async () =>
            Assert.Equal([(long)hyperionId], await ColumnAsync(connection, "SELECT DISTINCT serializer_id FROM snapshot")), Wait);
    }

    private static async Task<List<long>> ColumnAsync(SqliteConnection connection, string sql)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await using var reader = await command.ExecuteReaderAsync();
        var values = new List<long>();
        while (await reader.ReadAsync())
        {
            values.Add(reader.GetInt64(0));
        }

        return values;
    }
}
