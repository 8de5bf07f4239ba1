using MoCo.Model.Checkpoints;

namespace MoCo.Host.Tests.MultiProcess;

/// <summary>Differences between the tensors of two checkpoint files.</summary>
internal static class CheckpointComparison
{
    /// <summary>The largest absolute difference over every tensor of two checkpoints (in float64), and the tensor's name.</summary>
    public static (double Worst, string Name) LargestDifference(string a, string b)
    {
        using var x = CheckpointFile.Read(a);
        using var y = CheckpointFile.Read(b);
        Assert.Equal(x.Names.Order(), y.Names.Order());
        double worst = 0;
        string where = "";
        foreach (var name in x.Names)
        {
            double diff = x[name].to(TorchSharp.torch.ScalarType.Float64).sub(y[name].to(TorchSharp.torch.ScalarType.Float64)).abs().max().item<double>();
            if (diff > worst)
            {
                worst = diff;
                where = name;
            }
        }

        return (worst, where);
    }
}
