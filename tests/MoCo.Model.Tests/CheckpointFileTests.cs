using System.Collections;
using MoCo.Model.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace MoCo.Model.Tests;

public sealed class CheckpointFileTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("moco-ckpt-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static CheckpointHeader Header(string runId = "run-a", int epoch = 3, long step = 1200) =>
        new(runId, epoch, step, new DateTimeOffset(2025, 1, 2, 3, 4, 5, TimeSpan.Zero), "{\"batch\":256}",
            new Dictionary<string, string> { ["seed"] = "42", ["cursor"] = "3:1200" });

    /// <summary>Random bit patterns for every dtype (NaN payloads, -0, subnormals, ...), a scalar and an empty tensor.</summary>
    private static List<KeyValuePair<string, Tensor>> AllDTypes()
    {
        var random = new Random(7);
        Tensor Bits(long[] shape, ScalarType type, bool boolean = false)
        {
            var t = torch.empty(shape, type);
            var bytes = new byte[t.NumberOfElements * t.ElementSize];
            random.NextBytes(bytes);
            if (boolean)
            {
                for (int i = 0; i < bytes.Length; i++)
                {
                    bytes[i] &= 1;
                }
            }
            if (bytes.Length > 0)
            {
                t.bytes = bytes;
            }
            return t;
        }
        return
        [
            new("f32", Bits([3, 5], ScalarType.Float32)),
            new("f64", Bits([2, 2, 2], ScalarType.Float64)),
            new("bf16", Bits([17], ScalarType.BFloat16)),
            new("i64", Bits([4], ScalarType.Int64)),
            new("i32", Bits([6, 1], ScalarType.Int32)),
            new("u8", Bits([9], ScalarType.Byte)),
            new("bool", Bits([11], ScalarType.Bool, boolean: true)),
            new("scalar.num_batches_tracked", torch.tensor(123456789012L)),
            new("empty", torch.empty([0, 3], ScalarType.Float32)),
            new("noncontiguous", torch.arange(12, dtype: ScalarType.Float32).reshape(3, 4).t()),
        ];
    }

    private static void DisposeAll(IEnumerable<KeyValuePair<string, Tensor>> tensors)
    {
        foreach (var (_, t) in tensors)
        {
            t.Dispose();
        }
    }

    private static byte[] Bytes(Tensor t)
    {
        using var c = t.contiguous();
        return t.NumberOfElements == 0 ? [] : c.bytes.ToArray();
    }

    private string WriteSample(out string sha256, string runId = "run-a")
    {
        var tensors = AllDTypes();
        try
        {
            string path = Path.Combine(_dir, "sample.mocockpt");
            sha256 = CheckpointFile.Write(path, Header(runId), tensors);
            return path;
        }
        finally
        {
            DisposeAll(tensors);
        }
    }

    [Fact]
    public void Round_trip_is_bit_exact_for_every_dtype()
    {
        var tensors = AllDTypes();
        try
        {
            string path = Path.Combine(_dir, "round.mocockpt");
            string sha = CheckpointFile.Write(path, Header(), tensors);
            Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(path)[..^32])), sha);

            using var checkpoint = CheckpointFile.Read(path, "run-a");
            Assert.Equal(sha, checkpoint.Sha256);
            Assert.Equal("run-a", checkpoint.Header.RunId);
            Assert.Equal(3, checkpoint.Header.Epoch);
            Assert.Equal(1200, checkpoint.Header.Step);
            Assert.Equal("{\"batch\":256}", checkpoint.Header.ConfigJson);
            Assert.Equal(Header().CreatedUtc, checkpoint.Header.CreatedUtc);
            Assert.Equal(Header().Extra, checkpoint.Header.Extra);
            Assert.Equal(tensors.Select(p => p.Key), checkpoint.Names);
            foreach (var (name, expected) in tensors)
            {
                var actual = checkpoint[name];
                Assert.Equal(expected.dtype, actual.dtype);
                Assert.Equal(expected.shape, actual.shape);
                Assert.Equal(DeviceType.CPU, actual.device_type);
                Assert.Equal(Bytes(expected), Bytes(actual));
            }
            Assert.Equal(123456789012L, checkpoint["scalar.num_batches_tracked"].item<long>());
            Assert.Empty(checkpoint["scalar.num_batches_tracked"].shape);
        }
        finally
        {
            DisposeAll(tensors);
        }
    }

    [Fact]
    public void A_flipped_byte_anywhere_is_reported_as_checksum_mismatch()
    {
        string path = WriteSample(out _);
        byte[] original = File.ReadAllBytes(path);
        // Every byte of the prefix (magic and version included), then a stride through header, data and trailer.
        var positions = Enumerable.Range(0, 40).Concat(Enumerable.Range(0, original.Length / 7).Select(i => i * 7)).Append(original.Length - 1).Distinct();
        string corrupt = Path.Combine(_dir, "corrupt.mocockpt");
        foreach (int position in positions)
        {
            var bytes = (byte[])original.Clone();
            bytes[position] ^= 0x10;
            File.WriteAllBytes(corrupt, bytes);
            var e = Assert.Throws<CheckpointRejectedException>(() => CheckpointFile.Read(corrupt, "run-a"));
            Assert.True(e.Reason.StartsWith("checksum mismatch (file is corrupt)", StringComparison.Ordinal), $"byte {position}: {e.Message}");
            Assert.Contains(corrupt, e.Message);
        }
    }

    [Fact]
    public void A_truncated_file_is_reported_as_truncated()
    {
        string path = WriteSample(out _);
        byte[] original = File.ReadAllBytes(path);
        string truncated = Path.Combine(_dir, "truncated.mocockpt");
        foreach (int length in new[] { 0, 5, 31, 32, 100, original.Length / 2, original.Length - 1 })
        {
            File.WriteAllBytes(truncated, original[..length]);
            var e = Assert.Throws<CheckpointRejectedException>(() => CheckpointFile.Read(truncated));
            Assert.True(e.Reason.StartsWith("truncated", StringComparison.Ordinal), $"length {length}: {e.Message}");
            Assert.Contains(truncated, e.Message);
        }
    }

    [Fact]
    public void A_checkpoint_of_another_run_names_both_runs()
    {
        string path = WriteSample(out _, runId: "run-x");
        var e = Assert.Throws<CheckpointRejectedException>(() => CheckpointFile.Read(path, "run-y"));
        Assert.Equal("belongs to run run-x, this run is run-y", e.Reason);
        Assert.Contains(path, e.Message);
        using var anyRun = CheckpointFile.Read(path);
        Assert.Equal("run-x", anyRun.Header.RunId);
    }

    [Fact]
    public void A_file_that_is_not_a_checkpoint_is_refused_as_such()
    {
        string text = Path.Combine(_dir, "notes.mocockpt");
        File.WriteAllText(text, "This is a text file that happens to carry the checkpoint extension.\n");
        var e = Assert.Throws<CheckpointRejectedException>(() => CheckpointFile.Read(text));
        Assert.Equal("not a MoCo.Actors checkpoint", e.Reason);

        File.WriteAllBytes(text, [0x50, 0x4b, 0x03, 0x04]);
        e = Assert.Throws<CheckpointRejectedException>(() => CheckpointFile.Read(text));
        Assert.Equal("not a MoCo.Actors checkpoint", e.Reason);
    }

    [Fact]
    public void A_future_format_version_is_refused_with_its_number()
    {
        string path = WriteSample(out _);
        byte[] bytes = File.ReadAllBytes(path);
        // Rewrite the version and recompute the prefix check, as a future writer would.
        bytes[8] = 7;
        var covered = bytes[..24];
        System.Security.Cryptography.SHA256.HashData(covered).AsSpan(0, 8).CopyTo(bytes.AsSpan(24));
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<CheckpointRejectedException>(() => CheckpointFile.Read(path));
        Assert.StartsWith("unsupported format version 7", e.Reason);
    }

    [Fact]
    public void A_writer_that_throws_midway_leaves_the_previous_file_intact_and_no_partial_file()
    {
        string path = WriteSample(out string previousSha);
        var tensors = AllDTypes();
        try
        {
            var failing = new ThrowingOnSecondPass(tensors, failAt: 4);
            var e = Assert.Throws<IOException>(() => CheckpointFile.Write(path, Header(epoch: 9), failing));
            Assert.Equal("disk went away", e.Message);
            Assert.True(failing.WroteSomeData);
        }
        finally
        {
            DisposeAll(tensors);
        }
        Assert.Equal(["sample.mocockpt"], Directory.GetFiles(_dir).Select(Path.GetFileName));
        var info = CheckpointFile.Verify(path, "run-a");
        Assert.Equal(previousSha, info.Sha256);
        Assert.Equal(3, info.Header.Epoch);
    }

    [Fact]
    public void Disposing_a_checkpoint_disposes_its_tensors()
    {
        string path = WriteSample(out _);
        var checkpoint = CheckpointFile.Read(path);
        var tensor = checkpoint["f32"];
        checkpoint.Dispose();
        Assert.True(tensor.IsInvalid);
        Assert.Throws<ObjectDisposedException>(() => checkpoint["f32"]);
    }

    /// <summary>A tensor list whose second enumeration (the data pass) throws after <c>failAt</c> tensors.</summary>
    private sealed class ThrowingOnSecondPass(IReadOnlyList<KeyValuePair<string, Tensor>> inner, int failAt)
        : IReadOnlyList<KeyValuePair<string, Tensor>>
    {
        private int _passes;

        public bool WroteSomeData { get; private set; }

        public int Count => inner.Count;

        public KeyValuePair<string, Tensor> this[int index] => inner[index];

        public IEnumerator<KeyValuePair<string, Tensor>> GetEnumerator()
        {
            bool secondPass = ++_passes >= 2;
            for (int i = 0; i < inner.Count; i++)
            {
                if (secondPass && i == failAt)
                {
                    WroteSomeData = true;
                    throw new IOException("disk went away");
                }
                yield return inner[i];
            }
        }

        IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
    }
}
