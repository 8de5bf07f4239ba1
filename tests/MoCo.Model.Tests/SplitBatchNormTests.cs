using MoCo.Model.Nn;
using TorchSharp;
using static TorchSharp.torch;

namespace MoCo.Model.Tests;

public class SplitBatchNormTests
{
    [Fact]
    public void Split_batch_norm_equals_batch_norm_per_group()
    {
        const int g = 4, c = 3;
        using var split = new SplitBatchNorm(c, g);
        split.train();
        using var x = randn(16, c, 5, 5, generator: new Generator(9)) * 3 + 1;
        using var y = split.forward(x);
        split.CommitPending();

        var means = new List<Tensor>();
        var vars = new List<Tensor>();
        for (int j = 0; j < g; j++)
        {
            // group j holds samples n with n mod G == j
            var idx = tensor(Enumerable.Range(0, 16).Where(n => n % g == j).Select(n => (long)n).ToArray());
            using var bn = nn.BatchNorm2d(c);
            bn.train();
            var xj = x.index_select(0, idx);
            var yj = bn.forward(xj);
            // float32 normalisation of identical numbers: within 1e-5
            Assert.True(yj.sub(y.index_select(0, idx)).abs().max().item<float>() < 1e-5f);
            means.Add(bn.running_mean!.clone());
            vars.Add(bn.running_var!.clone());
        }
        using var expectedMean = stack(means).mean([0]);
        using var expectedVar = stack(vars).mean([0]);
        Assert.True(split.RunningMean.sub(expectedMean).abs().max().item<float>() < 1e-6f);
        Assert.True(split.RunningVar.sub(expectedVar).abs().max().item<float>() < 1e-6f);
        Assert.Equal(1, split.NumBatchesTracked.item<long>());
    }

    [Fact]
    public void Pending_statistics_change_nothing_until_committed()
    {
        using var split = new SplitBatchNorm(2, 2);
        split.train();
        using var x = randn(8, 2, 3, 3) + 5;
        using var y = split.forward(x);
        Assert.Equal(0f, split.RunningMean.abs().sum().item<float>());
        split.DropPending();
        Assert.Equal(0f, split.RunningMean.abs().sum().item<float>());
        Assert.Equal(0, split.NumBatchesTracked.item<long>());
        using var y2 = split.forward(x);
        split.CommitPending();
        Assert.True(split.RunningMean.abs().sum().item<float>() > 0);
    }
}
