using TorchSharp;
using static TorchSharp.torch;

namespace MoCo.Model.Tests;

/// <summary>
/// Hand-built state dicts with torchvision's ResNet-18 names, shapes and order (random values),
/// for export tests while no ResNet module is at hand. BN statistics are kept well-conditioned
/// (var in [0.5, 1.5]) so that a forward pass stays finite.
/// </summary>
internal static class TorchvisionStateDict
{
    /// <summary>The head on top of the backbone.</summary>
    public enum Head
    {
        /// <summary>No fc.* entries.</summary>
        None,

        /// <summary>fc.weight, fc.bias.</summary>
        Linear,

        /// <summary>MoCo v2 MLP: fc.0.weight/bias (dim × dim), fc.2.weight/bias (out × dim).</summary>
        Mlp,
    }

    /// <summary>A ResNet-18 (BasicBlock, [2, 2, 2, 2]) at base width <paramref name="width"/> (64 in torchvision).</summary>
    public static List<KeyValuePair<string, Tensor>> ResNet18(int width, bool cifarStem, Head head, int outputs, long seed)
    {
        using var generator = new Generator((ulong)seed);
        var entries = new List<KeyValuePair<string, Tensor>>();

        void Conv(string name, long cout, long cin, long k)
        {
            double scale = Math.Sqrt(2.0 / (cin * k * k));
            using var raw = torch.randn([cout, cin, k, k], generator: generator);
            entries.Add(new(name + ".weight", raw.mul(scale)));
        }

        void Bn(string name, long c)
        {
            using var w = torch.rand([c], generator: generator);
            using var b = torch.randn([c], generator: generator);
            using var m = torch.randn([c], generator: generator);
            using var v = torch.rand([c], generator: generator);
            entries.Add(new(name + ".weight", w.add(0.5)));
            entries.Add(new(name + ".bias", b.mul(0.1)));
            entries.Add(new(name + ".running_mean", m.mul(0.1)));
            entries.Add(new(name + ".running_var", v.add(0.5)));
            entries.Add(new(name + ".num_batches_tracked", torch.tensor(1000L)));
        }

        void Linear(string name, long cout, long cin)
        {
            using var w = torch.randn([cout, cin], generator: generator);
            entries.Add(new(name + ".weight", w.mul(1.0 / Math.Sqrt(cin))));
            entries.Add(new(name + ".bias", torch.zeros([cout])));
        }

        Conv("conv1", width, 3, cifarStem ? 3 : 7);
        Bn("bn1", width);
        long inplanes = width;
        for (int layer = 1; layer <= 4; layer++)
        {
            long planes = width << (layer - 1);
            for (int block = 0; block < 2; block++)
            {
                string prefix = $"layer{layer}.{block}";
                long cin = block == 0 ? inplanes : planes;
                Conv($"{prefix}.conv1", planes, cin, 3);
                Bn($"{prefix}.bn1", planes);
                Conv($"{prefix}.conv2", planes, planes, 3);
                Bn($"{prefix}.bn2", planes);
                if (block == 0 && layer > 1)
                {
                    Conv($"{prefix}.downsample.0", planes, inplanes, 1);
                    Bn($"{prefix}.downsample.1", planes);
                }
            }
            inplanes = planes;
        }
        long features = width * 8;
        switch (head)
        {
            case Head.Linear:
                Linear("fc", outputs, features);
                break;
            case Head.Mlp:
                Linear("fc.0", features, features);
                Linear("fc.2", outputs, features);
                break;
        }
        return entries;
    }

    /// <summary>Disposes every tensor of <paramref name="entries"/>.</summary>
    public static void Dispose(IEnumerable<KeyValuePair<string, Tensor>> entries)
    {
        foreach (var (_, tensor) in entries)
        {
            tensor.Dispose();
        }
    }
}
