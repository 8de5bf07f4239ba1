using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using MoCo.Model.Checkpoints;

namespace MoCo.Model.Tests;

/// <summary>
/// Headers a writer with the right checksums can craft (anyone can compute them), beyond the corpus: each is refused
/// naming its field, or loads; nothing reaches the allocator unchecked.
/// </summary>
public sealed class CheckpointHeaderValidationTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("moco-ckpt-hostile-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void A_tensor_without_elements_loads_whatever_its_other_dimensions_claim()
    {
        // [0, 2^62] holds no bytes: its size is 0 however large the other dimension, and libtorch allocates nothing
        string path = Write("""{"Name":"empty","DType":"float32","Shape":[0,4611686018427387904],"Offset":0,"Length":0}""", []);

        using var checkpoint = CheckpointFile.Read(path, "run");

        Assert.Equal([0L, 1L << 62], checkpoint["empty"].shape);
    }

    [Fact]
    public void A_property_given_twice_is_refused_rather_than_read_one_way_or_the_other()
    {
        // two run ids: a reader that takes the first and one that takes the last would disagree on whose checkpoint it is
        string path = Write(
            """{"Name":"w","DType":"uint8","Shape":[1],"Offset":0,"Length":1}""", [7],
            prefix: "\"RunId\":\"other\",");

        var e = Assert.Throws<CheckpointRejectedException>(() => CheckpointFile.Verify(path));

        Assert.StartsWith("malformed header: ", e.Reason, StringComparison.Ordinal);
        Assert.Contains("RunId", e.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void A_negative_length_on_an_empty_shape_is_refused_naming_both()
    {
        string path = Write("""{"Name":"w","DType":"uint8","Shape":[],"Offset":0,"Length":-1}""", [7]);

        var e = Assert.Throws<CheckpointRejectedException>(() => CheckpointFile.Verify(path));

        Assert.Equal("malformed header: tensor 'w' has Length -1, but its Shape [] of uint8 holds 1 bytes", e.Reason);
    }

    /// <summary>A checkpoint of run "run" with one index entry and the given data, its prefix check and trailer valid.</summary>
    private string Write(string indexEntry, byte[] data, string prefix = "")
    {
        string json = "{" + prefix + "\"RunId\":\"run\",\"Epoch\":0,\"Step\":0,\"CreatedUtc\":\"2025-01-01T00:00:00+00:00\","
            + "\"ConfigJson\":\"{}\",\"Extra\":{},\"Tensors\":[" + indexEntry + "]}";
        byte[] header = Encoding.UTF8.GetBytes(json);
        long total = 32 + header.Length + data.Length + 32;
        var body = new byte[total - 32];
        "MOCOCKPT"u8.CopyTo(body);
        BinaryPrimitives.WriteUInt32LittleEndian(body.AsSpan(8), 1);
        BinaryPrimitives.WriteUInt32LittleEndian(body.AsSpan(12), (uint)header.Length);
        BinaryPrimitives.WriteInt64LittleEndian(body.AsSpan(16), total);
        SHA256.HashData(body.AsSpan(0, 24)).AsSpan(0, 8).CopyTo(body.AsSpan(24));
        header.CopyTo(body, 32);
        data.CopyTo(body, 32 + header.Length);
        string path = Path.Combine(_dir, Guid.NewGuid().ToString("N") + ".mocockpt");
        File.WriteAllBytes(path, [.. body, .. SHA256.HashData(body)]);
        return path;
    }
}
