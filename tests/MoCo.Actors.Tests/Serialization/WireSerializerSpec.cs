using System.Runtime.Serialization;
using Akka.Actor;
using Akka.Configuration;
using Akka.Util;
using MoCo.Actors.Nodes;
using MoCo.Actors.Persistence;
using MoCo.Actors.Run;
using MoCo.Actors.Serialization;
using MoCo.Actors.Training;
using MoCo.Actors.Workers;
using MoCo.Actors.Tests.Persistence;
using Xunit.Abstractions;

namespace MoCo.Actors.Tests.Serialization;

/// <summary>
/// What a process can make our actors accept over remoting: only the wire types, only with an HMAC under the cluster's
/// key; never JSON, never a journal type through the wire, never a command that belongs to a process.
/// </summary>
public sealed class WireSerializerSpec : SqliteJournalSpec
{
    public WireSerializerSpec(ITestOutputHelper output)
        : base(output)
    {
    }

    public static TheoryData<object> WireMessages() => new()
    {
        new Worker.RunSteps(12),
        new Worker.TakeCheckpoint(1, 12, 41.5),
        new Worker.JoinGeneration(3, 0, 1, 2, new[] { "10.0.0.1:5000", "10.0.0.2:5000" }, null),
        new Worker.WorkerFailed(1, "training", 12, 0, 12, "boom", true),
        new NodeAgent.GetOffer("run-1", [1, 2, 3]),
        new NodeAgent.Offer("akka.ssl.tcp://moco@10.0.0.2:4053", 1, [9, 9]),
        new NodeAgent.StartWorkers("run-1", "{}", new List<int> { 1, 2 }, 3, 7),
    };

    [Theory]
    [MemberData(nameof(WireMessages))]
    public void Wire_messages_must_round_trip_through_the_signed_serializer(object message)
    {
        var serializer = Sys.Serialization.FindSerializerForType(message.GetType());
        Assert.IsType<MocoWireSerializer>(serializer);

        var copy = serializer.FromBinary(serializer.ToBinary(message), message.GetType());

        Assert.Equal(message.GetType(), copy.GetType());
        Assert.Equal(serializer.ToBinary(message), serializer.ToBinary(copy)); // the same fields, byte for byte
    }

    [Fact]
    public void A_message_signed_with_another_key_or_tampered_with_must_be_refused()
    {
        var ours = Sys.Serialization.FindSerializerForType(typeof(Worker.RunSteps));
        var theirs = new MocoWireSerializer((ExtendedActorSystem)Sys, WireSettings(new byte[MocoWireSerializer.KeyBytes]));
        var forged = theirs.ToBinary(new Worker.RunSteps(long.MaxValue));

        var refused = Assert.Throws<SerializationException>(() => ours.FromBinary(forged, typeof(Worker.RunSteps)));
        Assert.Contains("HMAC does not verify", refused.Message);

        var genuine = ours.ToBinary(new Worker.RunSteps(5));
        genuine[^1] ^= 1;
        Assert.Throws<SerializationException>(() => ours.FromBinary(genuine, typeof(Worker.RunSteps)));
        Assert.Throws<SerializationException>(() => ours.FromBinary([], typeof(Worker.RunSteps)));
        Assert.Throws<SerializationException>(() => ours.FromBinary(new byte[20], typeof(Worker.RunSteps)));
    }

    [Fact]
    public void A_journal_type_must_not_pass_as_a_wire_message_even_with_a_valid_MAC()
    {
        // a sender holding the key still cannot make the wire serializer build an event (nor the journal's a wire message)
        var key = new byte[MocoWireSerializer.KeyBytes];
        var unrestricted = new MocoWireSerializer((ExtendedActorSystem)Sys, ConfigurationFactory.ParseString(
            $"key = \"{Convert.ToBase64String(key)}\""));
        var restricted = new MocoWireSerializer((ExtendedActorSystem)Sys, WireSettings(key));
        var bytes = unrestricted.ToBinary(new RunCompleted(long.MaxValue, DateTimeOffset.UnixEpoch));

        Assert.Throws<SerializationException>(() => restricted.FromBinary(bytes, typeof(RunCompleted)));
        var journal = Sys.Serialization.FindSerializerForType(typeof(RunState));
        Assert.Throws<SerializationException>(() => journal.FromBinary(UnrestrictedHyperion(new Worker.RunSteps(1)), typeof(Worker.RunSteps)));
    }

    [Fact]
    public void Commands_that_belong_to_a_process_must_have_no_serializer_and_JSON_must_be_refused()
    {
        foreach (var local in new object[] { TrainingDirector.Interrupt.Instance, new RunRecorder.CompleteRun(long.MaxValue), new RunRecorder.FailRun("x"), new NodeAgent.Leave("x") })
        {
            Assert.ThrowsAny<Exception>(() => Sys.Serialization.FindSerializerForType(local.GetType()));
        }

        // Akka's default serializer id 1 (JSON) builds nothing: a peer naming our type in JSON gets a refusal
        var json = """{"$type":"MoCo.Actors.Training.TrainingDirector+Interrupt, MoCo.Actors"}"""u8.ToArray();
        var refused = Assert.Throws<SerializationException>(() => Sys.Serialization.Deserialize(json, RefusingJsonSerializer.Id, typeof(TrainingDirector.Interrupt).TypeQualifiedName()));
        Assert.Contains("accepts no JSON", refused.Message);
    }

    private static Config WireSettings(byte[] key) => ConfigurationFactory.ParseString(
            $"key = \"{Convert.ToBase64String(key)}\"\ndisallow-unsafe-type = true\nallowed-types = [{string.Join(", ", HyperionAllowList.Wire.Select(t => "\"" + t.AssemblyQualifiedName + "\""))}]");

    private static byte[] UnrestrictedHyperion(object value)
    {
        var serializer = new global::Hyperion.Serializer(global::Hyperion.SerializerOptions.Default.WithDisallowUnsafeType(false));
        using var stream = new MemoryStream();
        serializer.Serialize(value, stream);
        return stream.ToArray();
    }
}
