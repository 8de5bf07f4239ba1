using Akka.Actor;
using Akka.Configuration;
using Akka.TestKit.Xunit2;
using MoCo.Actors.Persistence;
using MoCo.Actors.Run;
using MoCo.Actors.Tests.Persistence;
using Xunit.Abstractions;

namespace MoCo.Actors.Tests.Run;

/// <summary>The run recorder on a real PostgreSQL journal (<see cref="RunJournal.PostgreSql"/>), in a schema of its own.</summary>
public sealed class PostgresRunRecorderSpec : TestKit
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    private readonly PostgresSchema? _schema;
    private readonly List<ActorSystem> _extraSystems = [];

    public PostgresRunRecorderSpec(ITestOutputHelper output)
        : this(PostgresSchema.TryCreate(), output)
    {
    }

    private PostgresRunRecorderSpec(PostgresSchema? schema, ITestOutputHelper output)
        : base(SystemConfig(schema), "moco-pg-test", output)
    {
        _schema = schema;
    }

    [PostgresFact]
    public async Task Recorder_must_recover_same_state_after_restart_on_postgres()
    {
        if (_schema is null)
        {
            Assert.Fail(PostgresFactAttribute.HowToProvide);
        }

        var recorder = Sys.ActorOf(RunRecorderActor.Props("r1"), "run-recorder");
        foreach (var command in RunScript.Commands("r1"))
        {
            recorder.Tell(command, TestActor);
            await ExpectMsgAsync<RunRecorder.Ack>(Wait);
        }

        recorder.Tell(RunRecorder.GetState.Instance, TestActor);
        var before = await ExpectMsgAsync<RunState>(Wait);

        await Sys.Terminate().WaitAsync(Wait);
        var restarted = ActorSystem.Create("moco-pg-restarted", SystemConfig(_schema).WithFallback(DefaultConfig));
        _extraSystems.Add(restarted);
        var probe = CreateTestProbe(restarted);
        var recovered = restarted.ActorOf(RunRecorderActor.Props("r1"), "run-recorder");
        recovered.Tell(RunRecorder.GetState.Instance, probe);
        var after = await probe.ExpectMsgAsync<RunState>(Wait);

        Assert.Equal(before, after);
        Assert.Equal(before.StartedUtc, after.StartedUtc);
        Assert.Equal(RunStatus.Completed, after.Status);

        await using var history = new RunHistory(restarted);
        Assert.Equal(["r1"], await history.ListRunIdsAsync());
        Assert.Equal(before, await history.ReplayAsync("r1"));
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
            system.Terminate().Wait(Wait);
        }

        _schema?.Dispose();
    }

    private static Config SystemConfig(PostgresSchema? schema)
    {
        var config = ConfigurationFactory.ParseString("akka.loglevel = WARNING");
        return schema is null ? config : config.WithFallback(RunJournal.PostgreSql(schema.ConnectionString));
    }
}
