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

    /// <summary>One instance of every journal type (events and the snapshot), each holding the collections it can carry.</summary>
    public static TheoryData<object> Messages()
    {
        var now = new DateTimeOffset(2025, 3, 4, 5, 6, 7, TimeSpan.Zero);
        var state = RunState.Empty.ApplyAll(
        [
            new RunStarted("r1", "{}", now),
            new WorkerJoined(RunScript.W0),
            new WorkerJoined(RunScript.W1),
            new GenerationStarted(1, ImmutableList.Create(RunScript.W0, RunScript.W1), 0),
            new StepsRecorded(0, ImmutableList.Create(7.5, 7.25), "ab", ImmutableList.Create(1L, -2L), 2, 2, StepsRecordedPlanes.TcpRing),
            new EpochCompleted(0, 100, RunScript.Metrics(7.0, knn: 0.2)),
            new CheckpointSaved("/c.pt", new string('0', 64), 0, 100),
            new RunFailed("disk full", now),
        ]);
        return new TheoryData<object>
        {
            new RunStarted("r1", "{}", now),
            new GenerationStarted(2, ImmutableList.Create(RunScript.W1), 100),
            new WorkerJoined(RunScript.W1),
            new WorkerLeft("w1", "gone"),
            new EpochCompleted(1, 200, RunScript.Metrics(6.0, knn: 0.3)),
            new CheckpointSaved("/d.pt", "cd", 1, 200),
            new RunCompleted(200, now),
            new RunFailed("oops", now),
            new StepsRecorded(5, ImmutableList.Create(6.5, 6.4), "cd", ImmutableList.Create(long.MinValue, long.MaxValue), 2, 1, StepsRecordedPlanes.InProcess),
            new StepsRecorded(7, ImmutableList.Create(double.NaN), null, null, 1, 3, StepsRecordedPlanes.Nccl),
            state,
        };
    }

    [Fact]
    public void Allow_lists_must_hold_every_journal_and_wire_type_and_the_collections_they_carry_and_nothing_local()
    {
        var journal = HyperionAllowList.MessageTypes(typeof(IMocoMessage).Assembly, typeof(IJournalMessage));
        var wire = HyperionAllowList.MessageTypes(typeof(IMocoMessage).Assembly, typeof(IWireMessage));

        Assert.Contains(typeof(RunState), journal);
        Assert.Contains(typeof(RunStarted), journal);
        Assert.Contains(typeof(MoCo.Actors.Workers.Worker.RunSteps), wire);
        Assert.Contains(typeof(MoCo.Actors.Nodes.NodeAgent.Offer), wire);
        Assert.Subset(HyperionAllowList.Journal.ToHashSet(), journal.ToHashSet());
        Assert.Subset(HyperionAllowList.Wire.ToHashSet(), wire.ToHashSet());
        Assert.Contains(typeof(RunStatus), HyperionAllowList.Journal);
        Assert.Contains(typeof(ImmutableList<WorkerInfo>), HyperionAllowList.Journal);
        Assert.Contains(typeof(ImmutableSortedDictionary<string, WorkerInfo>), HyperionAllowList.Journal);
        Assert.DoesNotContain(typeof(FileInfo), HyperionAllowList.Journal);
        // commands from the command line and the recorder's commands stay in their process: on neither list
        foreach (var local in new[] { typeof(MoCo.Actors.Training.TrainingDirector.Interrupt), typeof(RunRecorder.CompleteRun), typeof(RunRecorder.FailRun), typeof(MoCo.Actors.Nodes.NodeAgent.Leave) })
        {
            Assert.DoesNotContain(local, HyperionAllowList.Journal);
            Assert.DoesNotContain(local, HyperionAllowList.Wire);
        }

        // no type is both: a wire message cannot be slipped in through the journal's serializer, nor an event through the wire's
        Assert.Empty(journal.Intersect(wire));
    }

    [Theory]
    [MemberData(nameof(Messages))]
    public void Our_messages_must_round_trip_through_the_restricted_serializer(object message)
    {
        var serializer = Restricted();

        var copy = serializer.FromBinary(serializer.ToBinary(message), message.GetType());

        Assert.Equal(message.GetType(), copy.GetType());
        Assert.Equal(message, copy);
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
