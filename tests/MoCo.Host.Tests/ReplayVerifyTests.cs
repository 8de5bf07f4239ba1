using MoCo.Host.History;
using MoCo.Model.Checkpoints;
using MoCo.Model.Diagnostics;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace MoCo.Host.Tests;

/// <summary>
/// <c>moco replay RUN --verify</c> as a user runs it, on a tiny run trained by <c>moco train</c> in a process of its own:
/// the same machine replays it bit for bit, a checkpoint changed after it was written is caught before the first step
/// and its tensor named, and another oneDNN kernel set never passes for identical.
/// </summary>
public sealed class ReplayVerifyTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "moco-replay-verify-" + Guid.NewGuid().ToString("N"));

    private static readonly string[] Tiny =
    [
        "--data", "synthetic:256", "--epochs", "2", "--batch-size", "32", "--moco-k", "64", "--width", "4",
        "--moco-dim", "16", "--bn-splits", "4", "--knn-every", "0", "--knn-at-start", "false", "--threads", "2",
        "--checkpoint-every-steps", "4", "--keep-checkpoints", "100",
    ];

    [Fact]
    public void A_run_replays_bit_for_bit_and_a_changed_checkpoint_is_named_before_the_first_step()
    {
        var runDir = Path.Combine(_dir, "run");
        var (code, trained) = Run(["train", .. Tiny, "--run-dir", runDir]);
        Assert.True(code == 0, trained);

        // the whole run from its seeded start: 16 steps, a digest at every chunk end (every 4 steps)
        var (whole, wholeOutput) = Run(["replay", runDir, "--verify"]);
        output.WriteLine(wholeOutput);
        Assert.True(whole == 0, wholeOutput);
        Assert.Contains("replayed steps 0 to 15 from the seeded initialisation", wholeOutput, StringComparison.Ordinal);
        Assert.Contains("state digest equal at 4 chunk end(s)", wholeOutput, StringComparison.Ordinal);

        // one weight of the checkpoint at step 8 changed by one unit in the last place, the file rewritten with a valid
        // hash (as a buggy writer or a hand would): the restored state is not the one the journal recorded at step 8
        string path = new CheckpointDirectory(runDir).List().Single(p => CheckpointDirectory.TryParseFileName(p, out _, out long s) && s == 8);
        const string tensorName = "model.encoder_q.layer2.0.conv1.weight";
        using (var checkpoint = CheckpointFile.Read(path))
        {
            var tensors = checkpoint.Tensors.Select(kv => new KeyValuePair<string, Tensor>(kv.Key, kv.Value.clone())).ToList();
            var weight = tensors.Single(kv => kv.Key == tensorName).Value;
            float v = weight[0, 0, 0, 0].item<float>();
            weight[0, 0, 0, 0] = BitConverter.Int32BitsToSingle(BitConverter.SingleToInt32Bits(v) ^ 1);
            CheckpointFile.Write(path, checkpoint.Header, tensors);
        }

        var (perturbed, perturbedOutput) = Run(["replay", runDir, "--verify", "--from", "8"]);
        output.WriteLine(perturbedOutput);
        Assert.True(perturbed == 11, perturbedOutput);
        Assert.Contains($"is not the state the journal recorded at step 8: {tensorName} differs", perturbedOutput, StringComparison.Ordinal);

        // from the checkpoint before it, the replay computes the true state at step 8 and goes on identically
        var (earlier, earlierOutput) = Run(["replay", runDir, "--verify", "--from", "7"]);
        Assert.True(earlier == 0, earlierOutput);
        Assert.Contains("replayed steps 4 to 15 from ckpt-e0000-s00000004", earlierOutput, StringComparison.Ordinal);
    }

    [Fact]
    public void A_replay_on_other_kernels_is_never_called_identical()
    {
        var runDir = Path.Combine(_dir, "isa");
        // ALL: oneDNN's best kernels even when the tests themselves run under DNNL_MAX_CPU_ISA=AVX2
        var (code, trained) = Run(["train", .. Tiny, "--run-dir", runDir], ("DNNL_MAX_CPU_ISA", "ALL"));
        Assert.True(code == 0, trained);

        // Recorded with the default kernels; replayed with oneDNN limited to AVX2. On a CPU with AVX-512 the kernels differ
        // and so do the last bits (measured: losses within 3.4e-5 relative over 8 steps, the state digest differs at the
        // first chunk end): within tolerance or diverged, never identical. On a CPU without AVX-512 both are the same
        // kernels, and identical is the truth.
        var (replayed, replayedOutput) = Run(["replay", runDir, "--verify"], ("DNNL_MAX_CPU_ISA", "AVX2"));
        output.WriteLine(replayedOutput);
        Assert.Contains("DNNL_MAX_CPU_ISA=AVX2", replayedOutput, StringComparison.Ordinal);
        if (CpuDescription.Current().VectorExtensions.Contains("avx512f"))
        {
            Assert.True(replayed is 10 or 11, replayedOutput);
            Assert.Contains("state differs at step", replayedOutput, StringComparison.Ordinal);
            Assert.DoesNotContain("verdict: identical", replayedOutput, StringComparison.Ordinal);
        }
        else
        {
            Assert.True(replayed == 0, replayedOutput);
        }
    }

    [Fact]
    public void Compare_tells_identical_from_within_tolerance_from_diverged()
    {
        Assert.Equal(ReplayVerdict.Identical, ReplayVerifier.Compare(6.25, 6.25, 1e-3, out double zero));
        Assert.Equal(0, zero);
        Assert.Equal(ReplayVerdict.WithinTolerance, ReplayVerifier.Compare(6.25 * (1 + 1e-6), 6.25, 1e-3, out double small));
        Assert.InRange(small, 0.9e-6, 1.1e-6);
        Assert.Equal(ReplayVerdict.Diverged, ReplayVerifier.Compare(6.26, 6.25, 1e-3, out _));
        Assert.Equal(ReplayVerdict.Diverged, ReplayVerifier.Compare(double.NaN, 6.25, 1e-3, out _));
        // -0 and +0 are equal numbers with other bits: within tolerance, not identical
        Assert.Equal(ReplayVerdict.WithinTolerance, ReplayVerifier.Compare(-0.0, 0.0, 1e-3, out _));
    }

    private static (int Code, string Output) Run(string[] args, params (string Name, string Value)[] environment)
    {
        using var process = MultiProcess.MocoProcess.Start("moco " + args[0], args, environment);
        int code = process.WaitForExitAsync(TimeSpan.FromMinutes(4)).GetAwaiter().GetResult();
        return (code, process.Output);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
