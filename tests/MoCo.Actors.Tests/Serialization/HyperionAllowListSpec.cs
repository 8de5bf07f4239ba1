using System.Collections.Immutable;
using System.Runtime.Serialization;
using Akka.Serialization;
using Hyperion.Internal;
using MoCo.Actors.Run;
using MoCo.Actors.Serialization;
using MoCo.Actors.Tests.Persistence;
using MoCo.Actors.Tests.Run;
using Xunit.Abstractions;

namespace MoCo.Actors.Tests.Serialization;

/// <summary>Hyperion with <c>disallow-unsafe-type</c> and our allow-list, as <see cref="Persistence.RunJournalSpec"/>'s system configures it.</summary>
public sealed class HyperionAllowListSpec : SqliteJournalSpec
{
    public HyperionAllowListSpec(ITestOutputHelper output)
        : base(output)
    {
    }

    /// <summary>One instance of every message type, each holding the collections it can carry.</summary>
    public static TheoryData<object> Messages()
    {
        var now = new DateTimeOffset(2025, 3, 4, 5, 6, 7, TimeSpan.Zero);
        var state = RunState.Empty.ApplyAll(
        [
            new RunStarted("r1", "{}", now),
            new WorkerJoined(RunScript.W0),
            new WorkerJoined(RunScript.W1),
            new GenerationStarted(1, ImmutableList.Create(RunScript.W0, RunScript.W1), 0),
            new EpochCompleted(0, 100, RunScript.Metrics(7.0, knn: 0.2)),
            new CheckpointSaved("/c.pt", new string('0', 64), 0, 100),
            new RunFailed("disk full", now),
        ]);
        var start = new RunCoordinator.StartRun("r1", "{}");
        return new TheoryData<object>
        {
            start,
            new RunCoordinator.StartGeneration(ImmutableList.Create(RunScript.W0), 5),
            new RunCoordinator.StartGeneration(new[] { RunScript.W0, RunScript.W1 }, 5),
            new RunCoordinator.StartGeneration(new List<WorkerInfo> { RunScript.W1 }, 5),
            new RunCoordinator.JoinWorker(RunScript.W0),
            new RunCoordinator.LeaveWorker("w0", "gone"),
            new RunCoordinator.RecordEpoch(0, 100, RunScript.Metrics(7.0)),
            new RunCoordinator.RecordCheckpoint("/c.pt", "ab", 0, 100),
            new RunCoordinator.CompleteRun(100),
            new RunCoordinator.FailRun("oops"),
            RunCoordinator.GetState.Instance,
            new RunCoordinator.Ack(new RunCompleted(100, now), 9),
            new RunCoordinator.Rejected(start, "no"),
            new RunStarted("r1", "{}", now),
            new GenerationStarted(2, ImmutableList.Create(RunScript.W1), 100),
            new WorkerJoined(RunScript.W1),
            new WorkerLeft("w1", "gone"),
            new EpochCompleted(1, 200, RunScript.Metrics(6.0, knn: 0.3)),
            new CheckpointSaved("/d.pt", "cd", 1, 200),
            new RunCompleted(200, now),
            new RunFailed("oops", now),
            state,
            new TimelineEntry(1, now, "x"),
            RunScript.W0,
            RunScript.Metrics(5.0),
        };
    }

    [Fact]
    public void Allow_list_must_hold_every_message_type_and_the_collections_they_carry()
    {
        var messages = HyperionAllowList.MessageTypes(typeof(IMocoMessage).Assembly);

        Assert.Contains(typeof(RunState), messages);
        Assert.Contains(typeof(RunCoordinator.StartRun), messages);
        Assert.Subset(messages.ToHashSet(), HyperionAllowList.Types.Where(t => typeof(IMocoMessage).IsAssignableFrom(t)).ToHashSet());
        Assert.Superset(messages.ToHashSet(), HyperionAllowList.Types.Where(t => typeof(IMocoMessage).IsAssignableFrom(t)).ToHashSet());
        Assert.Contains(typeof(RunStatus), HyperionAllowList.Types);
        Assert.Contains(typeof(ImmutableList<WorkerInfo>), HyperionAllowList.Types);
        Assert.Contains(typeof(ImmutableSortedDictionary<string, WorkerInfo>), HyperionAllowList.Types);
        Assert.DoesNotContain(typeof(FileInfo), HyperionAllowList.Types);
    }

    [Theory]
    [MemberData(nameof(Messages))]
    public void Our_messages_must_round_trip_through_the_restricted_serializer(object message)
    {
        var serializer = Restricted();

        var copy = serializer.FromBinary(serializer.ToBinary(message), message.GetType());

        Assert.Equal(message.GetType(), copy.GetType());
        if (message is RunCoordinator.StartGeneration start)
        {
            Assert.Equal(start.Ranks, ((RunCoordinator.StartGeneration)copy).Ranks);
        }
        else
        {
            Assert.Equal(message, copy);
        }
    }

    [Fact]
    public void A_type_outside_the_allow_list_must_be_refused()
    {
        var serializer = Restricted();
        var hostile = Unrestricted(new Intruder("not ours"));

        var refused = Assert.Throws<SerializationException>(() => serializer.FromBinary(hostile, typeof(Intruder)));

        Assert.Contains(nameof(Intruder), refused.Message);
        Assert.IsType<UserEvilDeserializationException>(refused.InnerException);
        Assert.Throws<UserEvilDeserializationException>(() => serializer.ToBinary(new Intruder("not ours")));
    }

    [Fact]
    public void A_known_unsafe_type_must_be_refused()
    {
        var serializer = Restricted();
        var file = new FileInfo(Path.Combine(Directory, "x.txt"));
        var hostile = Unrestricted(file);

        var refused = Assert.Throws<SerializationException>(() => serializer.FromBinary(hostile, typeof(FileInfo)));

        Assert.IsAssignableFrom<EvilDeserializationException>(refused.InnerException);
        Assert.ThrowsAny<EvilDeserializationException>(() => serializer.ToBinary(file));
    }

    [Fact]
    public void Filter_must_admit_both_name_forms_of_a_listed_type_and_nothing_else()
    {
        var filter = new AllowListTypeFilter([typeof(ImmutableList<WorkerInfo>), typeof(RunStarted)]);

        Assert.True(filter.IsAllowed(typeof(ImmutableList<WorkerInfo>).AssemblyQualifiedName!));
        Assert.True(filter.IsAllowed(
            "System.Collections.Immutable.ImmutableList`1[[MoCo.Actors.Run.WorkerInfo, MoCo.Actors]], System.Collections.Immutable"));
        Assert.True(filter.IsAllowed("MoCo.Actors.Run.RunStarted, MoCo.Actors"));
        Assert.False(filter.IsAllowed("MoCo.Actors.Run.RunStarted"));
        Assert.False(filter.IsAllowed(typeof(ImmutableList<string>).AssemblyQualifiedName!));
        Assert.False(filter.IsAllowed(typeof(FileInfo).AssemblyQualifiedName!));
    }

    /// <summary>What a peer or a tampered journal row without our allow-list could hand us.</summary>
    private static byte[] Unrestricted(object value)
    {
        var serializer = new global::Hyperion.Serializer(global::Hyperion.SerializerOptions.Default.WithDisallowUnsafeType(false));
        using var stream = new MemoryStream();
        serializer.Serialize(value, stream);
        return stream.ToArray();
    }

    private Serializer Restricted()
    {
        var serializer = Sys.Serialization.FindSerializerForType(typeof(RunState));
        Assert.IsType<MocoHyperionSerializer>(serializer);
        return serializer;
    }

    /// <summary>A record of the test assembly: not an <see cref="IMocoMessage"/>, so not on the allow-list.</summary>
    public sealed record Intruder(string Payload);
}
