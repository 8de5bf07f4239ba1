using Akka.Serialization;
using MoCo.Actors.Collectives.Nccl;
using MoCo.Actors.Serialization;
using MoCo.Actors.Tests.Persistence;
using Xunit.Abstractions;

namespace MoCo.Actors.Tests.Nccl;

/// <summary>The unique id's message through Hyperion with <c>disallow-unsafe-type</c> and our allow-list, as the run's system configures it.</summary>
public sealed class NcclRendezvousSpec : SqliteJournalSpec
{
    public NcclRendezvousSpec(ITestOutputHelper output)
        : base(output)
    {
    }

    [Fact]
    public void Rendezvous_must_be_on_the_allow_list()
    {
        Assert.Contains(typeof(NcclRendezvous), HyperionAllowList.Wire);
    }

    [Fact]
    public void Rendezvous_must_round_trip_every_byte_of_the_id_through_the_restricted_serializer()
    {
        var bytes = Enumerable.Range(0, 128).Select(i => (byte)(i * 7 + 3)).ToArray();
        var message = new NcclRendezvous(3, NcclUniqueId.FromBytes(bytes));
        var serializer = Sys.Serialization.FindSerializerForType(typeof(NcclRendezvous));
        Assert.IsType<MocoWireSerializer>(serializer);

        var copy = Assert.IsType<NcclRendezvous>(serializer.FromBinary(serializer.ToBinary(message), typeof(NcclRendezvous)));

        Assert.Equal(message, copy);
        Assert.Equal(3, copy.Generation);
        Assert.Equal(bytes, copy.UniqueId.ToArray());
    }

    [Fact]
    public void Rendezvous_must_compare_ids_byte_by_byte()
    {
        var bytes = new byte[128];
        var other = new byte[128];
        other[64] = 9;

        Assert.Equal(new NcclRendezvous(1, NcclUniqueId.FromBytes(bytes)), new NcclRendezvous(1, NcclUniqueId.FromBytes(bytes.ToArray())));
        Assert.NotEqual(new NcclRendezvous(1, NcclUniqueId.FromBytes(bytes)), new NcclRendezvous(1, NcclUniqueId.FromBytes(other)));
        Assert.NotEqual(new NcclRendezvous(1, NcclUniqueId.FromBytes(bytes)), new NcclRendezvous(2, NcclUniqueId.FromBytes(bytes)));
    }

    [Fact]
    public void Rendezvous_must_refuse_a_generation_before_the_first()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new NcclRendezvous(0, default));
    }
}
