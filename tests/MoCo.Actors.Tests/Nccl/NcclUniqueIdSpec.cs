using MoCo.Actors.Collectives.Nccl;
using MoCo.Model.Collectives;

namespace MoCo.Actors.Tests.Nccl;

public sealed class NcclUniqueIdSpec
{
    [Fact]
    public void Unique_id_must_round_trip_its_128_bytes()
    {
        var bytes = Enumerable.Range(0, 128).Select(i => (byte)(255 - i)).ToArray();

        var id = NcclUniqueId.FromBytes(bytes);

        Assert.Equal(bytes, id.ToArray());
        Assert.Equal(id, NcclUniqueId.FromBytes(id.ToArray()));
    }

    [Fact]
    public void Unique_ids_must_differ_when_one_byte_differs()
    {
        var bytes = new byte[128];
        var other = new byte[128];
        other[127] = 1;

        Assert.NotEqual(NcclUniqueId.FromBytes(bytes), NcclUniqueId.FromBytes(other));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(127)]
    [InlineData(129)]
    public void Unique_id_must_refuse_any_length_but_128(int length)
    {
        var refused = Assert.Throws<ArgumentException>(() => NcclUniqueId.FromBytes(new byte[length]));

        Assert.Contains($"128 bytes; got {length}", refused.Message);
    }

    [Fact]
    public void Unique_id_must_keep_its_bytes_out_of_its_text()
    {
        var id = NcclUniqueId.FromBytes(Enumerable.Repeat((byte)0xAB, 128).ToArray());

        Assert.Equal("NcclUniqueId(128 bytes)", id.ToString());
    }

    [Fact]
    public void Creating_a_unique_id_must_name_the_missing_library_or_return_fresh_ids()
    {
        if (!NativeLibraries.Nccl.IsLoaded)
        {
            var refused = Assert.Throws<CollectiveException>(() => NcclUniqueId.Create());

            Assert.Contains("cannot create an NCCL unique id: libnccl absent (tried libnccl.so.2, libnccl.so", refused.Message);
            return;
        }

        // A host with libnccl: each call opens a new bootstrap endpoint, so two ids differ.
        Assert.NotEqual(NcclUniqueId.Create(), NcclUniqueId.Create());
    }
}
