using MoCo.Actors.Collectives;
using MoCo.Model;
using MoCo.Model.Collectives;
using MoCo.Model.Nn;
using MoCo.Model.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace MoCo.Actors.Tests.Collectives;

/// <summary>
/// MoCo steps (gradients, BN statistics, ShuffleBN's gathers, the queue's keys) over the TCP ring compute what they
/// compute over the in-process group, on a tiny float64 model (as in MoCo.Model.Tests' WorldSizeInvarianceTests).
/// </summary>
[Collection(BitIdenticalTraining.Name)]
public sealed class TcpRingTrainingTests
{
    private const int Batch = 16;
    private const int Groups = 4;
    private const int Steps = 3;

    /// <summary>4 KiB gradient buckets: several per step, all-reduced over the ring from the communication thread during backward.</summary>
    private static readonly GradientBucketing Buckets = new(4.0 / 1024);

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)] // the flat gradient buffer all-reduced where it lies
    [InlineData(true, true)] // each bucket a span of the flat gradient buffer, at its offset, without a copy
    public void Two_workers_over_the_ring_train_bit_identically_to_the_in_process_group(bool bucketed, bool flatBuffers)
    {
        // With two ranks every sum has two terms, and a + b == b + a exactly in IEEE arithmetic; gathers and
        // broadcasts copy bytes. So the ring must reproduce the in-process group's flat all-reduce bit for bit,
        // with or without buckets, with or without flat parameter buffers.
        var reference = Train(2, InProcess, GradientBucketing.Off);
        var ring = Train(2, OverRing, bucketed ? Buckets : GradientBucketing.Off, flatBuffers);

        foreach (var (name, t) in reference)
        {
            if (!t.IsSameAs(ring[name]))
            {
                Assert.Fail($"{name} differs: largest difference {t.to(ScalarType.Float64).sub(ring[name].to(ScalarType.Float64)).abs().max().item<double>():E2}");
            }
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Three_workers_over_the_ring_match_the_in_process_group_to_rounding(bool bucketed)
    {
        var reference = Train(3, InProcess, GradientBucketing.Off);
        var ring = Train(3, OverRing, bucketed ? Buckets : GradientBucketing.Off);

        double worst = 0;
        foreach (var (name, t) in reference)
        {
            worst = Math.Max(worst, t.is_floating_point() ? t.sub(ring[name]).abs().max().item<double>() : t.ne(ring[name]).sum().item<long>());
        }
        // float64, three-term sums in another order (the ring starts each block at its own rank, the group at rank 0,
        // and which rank starts an element's sum depends on where the element falls in its bucket): about 1e-16
        // relative per sum; 1e-9 absolute leaves room for three steps, as in WorldSizeInvarianceTests
        Assert.True(worst < 1e-9, $"largest difference {worst:E2}");
    }

    private static ICollective[] InProcess(int world, List<IDisposable> owned)
    {
        var group = new InProcessGroup(world, TimeSpan.FromSeconds(120));
        owned.Add(group);
        return Enumerable.Range(0, world).Select(r => group[r]).ToArray();
    }

    private static ICollective[] OverRing(int world, List<IDisposable> owned)
    {
        var ring = LocalRing.Form(world, chunkBytes: 8192);
        owned.AddRange(ring);
        return ring;
    }

    /// <summary>Runs <see cref="Steps"/> MoCo steps on a world of <paramref name="world"/> threads and returns rank 0's state (all ranks must agree).</summary>
    private static Dictionary<string, Tensor> Train(int world, Func<int, List<IDisposable>, ICollective[]> collectives, GradientBucketing bucketing, bool flatBuffers = false)
    {
        var layout = new BatchLayout(Batch, Groups, world);
        var settings = new MocoSettings(8, 40, 0.99, 0.1, false);
        var spec = new EncoderSpec("resnet18", 4, Stem.Cifar, 8, false, Groups);
        var owned = new List<IDisposable>();
        var models = new List<MomentumContrast>();
        try
        {
            var steppers = new List<MocoTrainStep>();
            for (int r = 0; r < world; r++)
            {
                var model = new MomentumContrast(() => new ResNet(spec), settings, 7);
                model.to(ScalarType.Float64);
                var sgd = new Sgd(model.EncoderQ.named_parameters().Select(p => ("encoder_q." + p.name, p.parameter)), 0.9, 5e-4);
                if (flatBuffers)
                {
                    model.UseFlatParameters();
                    sgd.UseFlat(model.FlatQ!);
                }

                models.Add(model);
                steppers.Add(new MocoTrainStep(model, sgd, 7, bucketing));
            }
            var inputs = Enumerable.Range(0, Steps).Select(s =>
            {
                var g = new Generator((ulong)(100 + s));
                return (randn(Batch, 3, 8, 8, dtype: ScalarType.Float64, generator: g), randn(Batch, 3, 8, 8, dtype: ScalarType.Float64, generator: g));
            }).ToList();
            var members = collectives(world, owned);
            var errors = new Exception?[world];
            var threads = Enumerable.Range(0, world).Select(r => new Thread(() =>
            {
                try
                {
                    var mine = tensor(layout.Positions(r).Select(p => (long)p).ToArray());
                    for (int s = 0; s < Steps; s++)
                    {
                        using var v1 = inputs[s].Item1.index_select(0, mine);
                        using var v2 = inputs[s].Item2.index_select(0, mine);
                        steppers[r].Run(v1, v2, members[r], layout, 0, s, s, 0.05);
                        if (bucketing.Enabled)
                        {
                            Assert.True(steppers[r].LastBucketsDuringBackward >= 3, $"rank {r}: {steppers[r].LastBucketsDuringBackward} buckets during backward");
                        }
                    }
                }
                catch (Exception e)
                {
                    errors[r] = e;
                    foreach (var m in members)
                    {
                        (m as TcpRingCollective)?.Abort();
                    }
                    (owned.OfType<InProcessGroup>().FirstOrDefault())?.Abort();
                }
            })).ToList();
            threads.ForEach(t => t.Start());
            threads.ForEach(t => t.Join());
            if (errors.Any(e => e is not null))
            {
                throw new AggregateException(errors.Where(e => e is not null).Select(e => e!));
            }
            var states = models.Select(m => m.state_dict()).ToList();
            foreach (var (name, t) in states[0])
            {
                for (int r = 1; r < world; r++)
                {
                    Assert.True(t.IsSameAs(states[r][name]), $"rank {r} disagrees with rank 0 on {name}");
                }
            }
            return states[0].ToDictionary(p => p.Key, p => p.Value.clone());
        }
        finally
        {
            models.ForEach(m => m.Dispose());
            owned.ForEach(o => o.Dispose());
        }
    }
}
