using System.Collections;
using MoCo.Model.Checkpoints;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace MoCo.Model.Tests;

public sealed class ExportTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("moco-export-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static void AssertSameValues(IReadOnlyList<KeyValuePair<string, Tensor>> expected, Dictionary<string, Tensor> actual)
    {
        Assert.Equal(expected.Select(p => p.Key).Order(), actual.Keys.Order());
        foreach (var (name, tensor) in expected)
        {
            var loaded = actual[name];
            Assert.Equal(tensor.dtype, loaded.dtype);
            Assert.Equal(tensor.shape, loaded.shape);
            Assert.True(Bytes(tensor).AsSpan().SequenceEqual(Bytes(loaded)), $"{name} differs after the round trip");
        }
    }

    private static byte[] Bytes(Tensor t)
    {
        using var c = t.contiguous();
        return c.bytes.ToArray();
    }

    [Fact]
    public void Export_round_trip_keeps_names_values_and_scalars()
    {
        var stateDict = TorchvisionStateDict.ResNet18(8, cifarStem: true, TorchvisionStateDict.Head.Mlp, outputs: 16, seed: 1);
        try
        {
            string withHead = Path.Combine(_dir, "with-head.pth");
            PyTorchExport.Save(withHead, stateDict, new PyTorchExportOptions { IncludeHead = true });
            var loaded = PyTorchExport.LoadStateDict(withHead);
            try
            {
                AssertSameValues(stateDict, loaded);
                Assert.Empty(loaded["bn1.num_batches_tracked"].shape);
                Assert.Equal(1000L, loaded["bn1.num_batches_tracked"].item<long>());
                Assert.Contains("fc.2.weight", loaded.Keys);
            }
            finally
            {
                TorchvisionStateDict.Dispose(loaded);
            }

            string backbone = Path.Combine(_dir, "backbone.pth");
            PyTorchExport.Save(backbone, stateDict);
            var headless = PyTorchExport.LoadStateDict(backbone);
            try
            {
                AssertSameValues(stateDict.Where(p => !p.Key.StartsWith("fc.", StringComparison.Ordinal)).ToList(), headless);
            }
            finally
            {
                TorchvisionStateDict.Dispose(headless);
            }
            Assert.True(stateDict.All(p => !p.Value.IsInvalid), "the inputs must not be disposed");
        }
        finally
        {
            TorchvisionStateDict.Dispose(stateDict);
        }
    }

    [Theory]
    [InlineData("conv1.weight", "stem.conv1.weight")]
    [InlineData("bn1.running_var", "stem.conv1.norm.running_var")]
    [InlineData("bn1.num_batches_tracked", "stem.conv1.norm.num_batches_tracked")]
    [InlineData("layer1.0.conv1.weight", "res2.0.conv1.weight")]
    [InlineData("layer1.1.bn2.bias", "res2.1.conv2.norm.bias")]
    [InlineData("layer2.0.downsample.0.weight", "res3.0.shortcut.weight")]
    [InlineData("layer2.0.downsample.1.running_mean", "res3.0.shortcut.norm.running_mean")]
    [InlineData("layer4.1.bn3.weight", "res5.1.conv3.norm.weight")]
    [InlineData("fc.weight", "stem.fc.weight")]
    public void Detectron2_names_follow_the_moco_converter(string torchvision, string detectron2)
    {
        Assert.Equal(detectron2, PyTorchExport.ToDetectron2Name(torchvision));
    }

    [Fact]
    public void Export_with_detectron2_names_round_trips_inside_the_wrapper()
    {
        var stateDict = TorchvisionStateDict.ResNet18(8, cifarStem: false, TorchvisionStateDict.Head.Linear, outputs: 10, seed: 2);
        try
        {
            string path = Path.Combine(_dir, "d2.pth");
            PyTorchExport.Save(path, stateDict, new PyTorchExportOptions { Detectron2Names = true });

            var expected = stateDict
                .Where(p => !p.Key.StartsWith("fc.", StringComparison.Ordinal))
                .Select(p => new KeyValuePair<string, Tensor>(PyTorchExport.ToDetectron2Name(p.Key), p.Value))
                .ToList();
            var loaded = PyTorchExport.LoadStateDict(path);
            try
            {
                AssertSameValues(expected, loaded);
                Assert.Contains("res3.0.shortcut.norm.running_var", loaded.Keys);
            }
            finally
            {
                TorchvisionStateDict.Dispose(loaded);
            }

            using var stream = File.OpenRead(path);
            Hashtable root = PyTorchUnpickler.UnpickleStateDict(stream);
            try
            {
                Assert.Equal("MOCO", root["__author__"]);
                Assert.Equal(true, root["matching_heuristics"]);
                Assert.IsAssignableFrom<IDictionary>(root["model"]);
            }
            finally
            {
                foreach (DictionaryEntry e in (IDictionary)root["model"]!)
                {
                    ((Tensor)e.Value!).Dispose();
                }
            }
        }
        finally
        {
            TorchvisionStateDict.Dispose(stateDict);
        }
    }

    [Fact]
    public void Export_writes_keys_in_input_order()
    {
        var stateDict = TorchvisionStateDict.ResNet18(4, cifarStem: true, TorchvisionStateDict.Head.None, outputs: 0, seed: 3);
        try
        {
            var names = PyTorchExport.Map(stateDict, new PyTorchExportOptions()).Select(p => p.Key).ToList();
            Assert.Equal(stateDict.Select(p => p.Key), names);
            Assert.Equal("conv1.weight", names[0]);
            Assert.Equal("layer4.1.bn2.num_batches_tracked", names[^1]);
        }
        finally
        {
            TorchvisionStateDict.Dispose(stateDict);
        }
    }
}
