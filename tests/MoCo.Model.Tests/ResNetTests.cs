using MoCo.Model.Nn;
using TorchSharp;
using static TorchSharp.torch;

namespace MoCo.Model.Tests;

public class ResNetTests
{
    [Fact]
    public void State_dict_names_match_torchvision_resnet18()
    {
        using var net = new ResNet(new EncoderSpec("resnet18", 64, Stem.ImageNet, 1000, false, 1));
        var names = net.state_dict().Keys.ToList();
        Assert.Equal(122, names.Count); // torchvision resnet18().state_dict() has 122 entries
        Assert.Contains("conv1.weight", names);
        Assert.Contains("bn1.num_batches_tracked", names);
        Assert.Contains("layer2.0.downsample.0.weight", names);
        Assert.Contains("layer2.0.downsample.1.running_var", names);
        Assert.Contains("layer4.1.bn2.bias", names);
        Assert.Contains("fc.weight", names);
        Assert.Equal(new long[] { 64, 3, 7, 7 }, net.state_dict()["conv1.weight"].shape);
        Assert.Equal(new long[] { 1000, 512 }, net.state_dict()["fc.weight"].shape);
    }

    [Fact]
    public void Resnet50_and_mlp_head_names_match_torchvision()
    {
        using var net = new ResNet(new EncoderSpec("resnet50", 64, Stem.ImageNet, 128, true, 1));
        var sd = net.state_dict();
        Assert.Equal(320 - 2 + 4, sd.Count); // resnet50: 320 entries; MLP head replaces fc.{weight,bias} by fc.0.* and fc.2.*
        Assert.Equal(new long[] { 2048, 2048 }, sd["fc.0.weight"].shape);
        Assert.Equal(new long[] { 128, 2048 }, sd["fc.2.weight"].shape);
        Assert.Equal(new long[] { 256, 64, 1, 1 }, sd["layer1.0.conv3.weight"].shape);
    }

    [Fact]
    public void Cifar_stem_keeps_resolution_and_outputs_dim()
    {
        using var net = new ResNet(new EncoderSpec("resnet18", 8, Stem.Cifar, 16, false, 2));
        net.train();
        using var x = randn(4, 3, 32, 32);
        using var y = net.forward(x);
        Assert.Equal(new long[] { 4, 16 }, y.shape);
        Assert.Equal(new long[] { 8, 3, 3, 3 }, net.state_dict()["conv1.weight"].shape);
    }
}
