using MoCo.Model.Checkpoints;
using MoCo.Model.Collectives;
using MoCo.Model.Training;
using static TorchSharp.torch;

namespace MoCo.Model.Tests;

/// <summary>
/// <see cref="EncoderWeights"/> read back what <see cref="PyTorchExport"/> writes (.pth and safetensors) with the
/// network named from the shapes, and <see cref="Pretrainer.InitializeEncoders"/> starts both encoders from them.
/// </summary>
public sealed class EncoderWeightsTests
{
    [Fact]
    public void Exported_weights_read_back_bit_for_bit_and_start_both_encoders()
    {
        var config = PretrainerTests.TinyConfig();
        var data = PretrainerTests.TinyData();
        using var dir = new TempDirectory();
        using var source = new Pretrainer(config, "run-source", data, SingleProcessCollective.Instance, new BatchLayout(config.BatchSize, config.BnSplits, 1), loaderThreads: 2);
        source.TrainStep();
        source.TrainStep(); // trained weights and BN statistics, unlike a fresh encoder's
        var exported = source.Model.EncoderQ.TorchvisionStateDict(withHead: true);

        foreach (var (file, format, layout) in new[]
                 {
                     ("w.pth", ExportFormat.Pth, WeightsLayout.TorchvisionStateDict),
                     ("w.safetensors", ExportFormat.Safetensors, WeightsLayout.Safetensors),
                 })
        {
            string path = Path.Combine(dir.Path, file);
            PyTorchExport.Save(path, exported, new PyTorchExportOptions { IncludeHead = true, Format = format });
            using var weights = EncoderWeights.Read(path);
            Assert.Equal(layout, weights.Layout);
            Assert.Equal(new EncoderShape(config.Arch, config.Width, config.Encoder.Stem, config.MocoDim, config.Mlp), weights.Shape);
            foreach (var (name, tensor) in exported)
            {
                Assert.True(Same(tensor, weights.Tensors[name]), $"{file}: {name} differs");
            }

            using var target = new Pretrainer(config, "run-target", data, SingleProcessCollective.Instance, new BatchLayout(config.BatchSize, config.BnSplits, 1), loaderThreads: 2);
            target.InitializeEncoders(weights);
            var query = target.Model.EncoderQ.state_dict();
            var key = target.Model.EncoderK.state_dict();
            foreach (var (name, tensor) in exported)
            {
                Assert.True(Same(tensor, query[name]), $"{file}: encoder_q.{name} differs from the weights");
                Assert.True(Same(tensor, key[name]), $"{file}: encoder_k.{name} is not a copy of encoder_q's");
            }
            target.TrainStep();
            Assert.Throws<InvalidOperationException>(() => target.InitializeEncoders(weights)); // only before the first step
        }

        // another network is refused by name; so are bytes of no layout
        var wider = config with { Width = config.Width * 2 };
        using var other = new Pretrainer(wider, "run-wide", data, SingleProcessCollective.Instance, new BatchLayout(wider.BatchSize, wider.BnSplits, 1), loaderThreads: 2);
        using var read = EncoderWeights.Read(Path.Combine(dir.Path, "w.pth"));
        var e = Assert.Throws<InvalidDataException>(() => other.InitializeEncoders(read));
        Assert.Contains($"width {config.Width}", e.Message);
        Assert.Contains($"width {wider.Width}", e.Message);
        string junk = Path.Combine(dir.Path, "junk.bin");
        File.WriteAllBytes(junk, [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F, 1, 2]); // a safetensors header length far beyond the file
        e = Assert.Throws<InvalidDataException>(() => EncoderWeights.Read(junk));
        Assert.Contains(EncoderWeights.ExpectedLayouts, e.Message);
    }

    private static bool Same(Tensor a, Tensor b) =>
        a.dtype == b.dtype && a.shape.SequenceEqual(b.shape) && (a.cpu() == b.cpu()).all().item<bool>();
}
