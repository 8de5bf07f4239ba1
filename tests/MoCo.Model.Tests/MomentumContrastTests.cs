using MoCo.Model.Collectives;
using MoCo.Model.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace MoCo.Model.Tests;

public class MomentumContrastTests
{
    [Fact]
    public void Key_encoder_starts_as_copy_and_gets_no_gradient()
    {
        using var moco = TinyModels.Moco();
        foreach (var (pq, pk) in moco.EncoderQ.parameters().Zip(moco.EncoderK.parameters()))
        {
            Assert.True(pq.eq(pk).all().item<bool>());
            Assert.False(pk.requires_grad);
        }
    }

    [Fact]
    public void Momentum_update_follows_the_formula()
    {
        using var moco = TinyModels.Moco();
        using (no_grad())
        {
            foreach (var p in moco.EncoderQ.parameters())
            {
                p.fill_(2.0f);
            }
            foreach (var p in moco.EncoderK.parameters())
            {
                p.fill_(1.0f);
            }
        }
        moco.MomentumUpdate();
        // 0.99 * 1 + 0.01 * 2 = 1.01; float32 rounding of that sum is within 1e-6
        foreach (var p in moco.EncoderK.parameters())
        {
            Assert.True(p.sub(1.01f).abs().max().item<float>() < 1e-6f);
        }
    }

    [Fact]
    public void Enqueue_writes_at_pointer_and_wraps_around()
    {
        using var moco = TinyModels.Moco(queue: 10, dim: 4);
        Assert.Equal(0, moco.QueuePointer);
        for (int step = 0; step < 3; step++)
        {
            using var keys = full(4, 4, (float)(step + 1));
            moco.Enqueue(keys);
        }
        // 12 keys into 10 slots: slots 0-1 hold step 3 (wrapped), 2-3 step 1, 4-7 step 2, 8-9 step 3
        Assert.Equal(2, moco.QueuePointer);
        float[] expected = [3, 3, 1, 1, 2, 2, 2, 2, 3, 3];
        for (int slot = 0; slot < 10; slot++)
        {
            Assert.Equal(expected[slot], moco.Queue[0, slot].item<float>());
            Assert.Equal(expected[slot], moco.Queue[3, slot].item<float>());
        }
        using var tooMany = zeros(11, 4);
        Assert.Throws<InvalidOperationException>(() => moco.Enqueue(tooMany));
    }

    [Fact]
    public void Queue_starts_normalised()
    {
        using var moco = TinyModels.Moco(queue: 16);
        using var norms = moco.Queue.norm(0);
        Assert.True(norms.sub(1).abs().max().item<float>() < 1e-5f);
    }

    [Fact]
    public void Loss_matches_float64_hand_computation()
    {
        using var moco = TinyModels.Moco(groups: 2, queue: 12);
        moco.train();
        var layout = new BatchLayout(8, 2, 1);
        moco.EncoderQ.SetBnGroups(2);
        using var x1 = randn(8, 3, 16, 16, generator: new Generator(5));
        using var x2 = randn(8, 3, 16, 16, generator: new Generator(6));
        var perm = MocoTrainStep.ShufflePermutation(7, 0, 0, 0, 8);
        var ctx = new ShuffleContext(SingleProcessCollective.Instance, layout, perm);
        var (loss, correct, keys) = moco.ContrastiveLoss(x1, x2, ctx);
        moco.EncoderQ.DropNormStatistics();
        moco.EncoderK.DropNormStatistics();

        // recompute q and k directly, then the loss by hand in float64
        using var q = nn.functional.normalize(moco.EncoderQ.forward(x1), dim: 1).to(ScalarType.Float64);
        moco.EncoderK.SetBnGroups(2);
        using var kShuffled = nn.functional.normalize(moco.EncoderK.forward(x2.index_select(0, tensor(perm.Select(p => (long)p).ToArray()))), dim: 1);
        var inverse = new long[8];
        for (int i = 0; i < 8; i++)
        {
            inverse[perm[i]] = i;
        }
        using var k = kShuffled.index_select(0, tensor(inverse)).to(ScalarType.Float64);
        using var queue = moco.Queue.to(ScalarType.Float64);
        double total = 0;
        for (int n = 0; n < 8; n++)
        {
            var logits = new double[13];
            for (int c = 0; c < 8; c++)
            {
                logits[0] += q[n, c].item<double>() * k[n, c].item<double>();
            }
            for (int j = 0; j < 12; j++)
            {
                for (int c = 0; c < 8; c++)
                {
                    logits[1 + j] += q[n, c].item<double>() * queue[c, j].item<double>();
                }
            }
            double max = logits.Max() / 0.1;
            double sum = logits.Sum(l => Math.Exp(l / 0.1 - max));
            total += -(logits[0] / 0.1 - max - Math.Log(sum));
        }
        double expected = total / 8;
        // float32 encoders and logits: relative error of the loss below 1e-5
        Assert.Equal(expected, loss.item<float>(), expected * 1e-5);
        Assert.True(keys.to(ScalarType.Float64).sub(k).abs().max().item<double>() < 1e-6);
        Assert.InRange(correct.item<float>(), 0, 8);
    }

    [Fact]
    public void ShuffleBn_unpermutes_keys_back_into_order()
    {
        // In eval mode BN uses running statistics, so a key does not depend on its batch mates: the
        // shuffled-then-unshuffled keys must equal the keys computed in plain order.
        using var moco = TinyModels.Moco(groups: 2, queue: 12);
        moco.EncoderK.eval();
        var layout = new BatchLayout(8, 2, 1);
        using var x = randn(8, 3, 16, 16, generator: new Generator(3));
        var perm = MocoTrainStep.ShufflePermutation(11, 0, 0, 0, 8);
        using var direct = nn.functional.normalize(moco.EncoderK.forward(x), dim: 1);
        var ctx = new ShuffleContext(SingleProcessCollective.Instance, layout, perm);
        moco.EncoderQ.eval();
        var (_, _, keys) = moco.ContrastiveLoss(x, x, ctx);
        // same inputs, same weights, only the batch order differs: float32 agreement within 1e-5
        Assert.True(keys.sub(direct).abs().max().item<float>() < 1e-5f);
        Assert.False(perm.SequenceEqual(Enumerable.Range(0, 8)));
    }

    [Fact]
    public void ShuffleBn_moves_samples_across_bn_groups()
    {
        // With G groups a uniform permutation sends a sample to another group with probability 1 - 1/G.
        const int b = 256, g = 8;
        int moved = 0, total = 0;
        for (int step = 0; step < 50; step++)
        {
            var perm = MocoTrainStep.ShufflePermutation(42, 0, step, 0, b);
            for (int i = 0; i < b; i++)
            {
                total++;
                if (perm[i] % g != i % g)
                {
                    moved++;
                }
            }
        }
        double fraction = (double)moved / total;
        // expected 7/8 = 0.875; 12800 draws give a standard deviation near 0.003: allow 5 sigma
        Assert.InRange(fraction, 0.875 - 0.015, 0.875 + 0.015);
    }
}
