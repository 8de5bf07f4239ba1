using MoCo.Model.Diagnostics;
using static TorchSharp.torch;

namespace MoCo.Model.Tests;

public class AllocatorPoisonTests
{
    [Fact]
    public void The_test_assembly_runs_with_every_new_allocation_filled_with_NaN()
    {
        // TestAssemblySetup turned the mode on before any test: memory nobody wrote reads as NaN, so a read before
        // write in our code (or libtorch's) fails at once instead of reading whatever was there
        Assert.True(AllocatorPoison.Enabled);
        using var fresh = empty(1 << 16);
        Assert.True(fresh.isnan().all().item<bool>(), "a fresh torch.empty holds something other than the NaN pattern");
        using var written = zeros(1 << 16);
        Assert.False(written.isnan().any().item<bool>());
    }
}
