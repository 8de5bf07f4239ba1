using TorchSharp;

namespace MoCo.Model.Tests;

public class TorchLoadsTests
{
    [Fact]
    public void Libtorch_loads_and_computes()
    {
        using var t = torch.arange(4, dtype: torch.float64);
        Assert.Equal(6.0, t.sum().item<double>());
    }
}
