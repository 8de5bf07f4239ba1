using TorchSharp;
using MoCo.Model.Collectives;
using MoCo.Model.Nn;
using MoCo.Model.Training;
using static TorchSharp.torch;

namespace MoCo.Model.Tests;

/// <summary>
/// docs/architecture.md, Invariants, I3: one worker and W workers compute the same steps, up to float summation order.
/// </summary>
public class WorldSizeInvarianceTests
{
    private const int Batch = 16;
    private const int Groups = 4;

    /// <summary>
    /// Runs <paramref name="steps"/> MoCo steps in float64 on a world of <paramref name="worldSize"/> threads,
    /// each rank feeding its share of fixed global batches, and returns rank 0's state (all ranks must agree).
    /// </summary>
    internal static List<KeyValuePair<string, Tensor>> Train(int worldSize, bool symmetric, int steps, GradientBucketing? bucketing = null)
        => Train(worldSize, symmetric, steps, bucketing ?? GradientBucketing.Off, _ => { });

    /// <summary>
    /// As above; <paramref name="afterStep"/> sees every rank's stepper after each step (on that rank's thread).
    /// </summary>
    internal static List<KeyValuePair<string, Tensor>> Train(int worldSize, bool symmetric, int steps, GradientBucketing bucketing, Action<MocoTrainStep> afterStep)
    {
        var layout = new BatchLayout(Batch, Groups, worldSize);
        var settings = new MocoSettings(8, 40, 0.99, 0.1, symmetric); // K 40: the queue wraps around on step 3
        using var group = new InProcessGroup(worldSize, TimeSpan.FromSeconds(60));
        var spec = new EncoderSpec("resnet18", 4, Stem.Cifar, 8, false, Groups);
        var models = new List<MomentumContrast>();
        var steppers = new List<MocoTrainStep>();
        for (int r = 0; r < worldSize; r++)
        {
            var model = new MomentumContrast(() => new ResNet(spec), settings, 7);
            model.to(ScalarType.Float64);
            var sgd = new Sgd(model.EncoderQ.named_parameters().Select(p => ("encoder_q." + p.name, p.parameter)), 0.9, 5e-4);
            models.Add(model);
            steppers.Add(new MocoTrainStep(model, sgd, 7, bucketing));
        }
        var inputs = Enumerable.Range(0, steps).Select(s =>
        {
            var g = new Generator((ulong)(100 + s));
            return (randn(Batch, 3, 8, 8, dtype: ScalarType.Float64, generator: g), randn(Batch, 3, 8, 8, dtype: ScalarType.Float64, generator: g));
        }).ToList();
        try
        {
            var errors = new Exception?[worldSize];
            var threads = Enumerable.Range(0, worldSize).Select(r => new Thread(() =>
            {
                try
                {
                    RunRank(r);
                }
                catch (Exception e)
                {
                    errors[r] = e;
                    group.Abort();
                }
            })).ToList();
            void RunRank(int r)
            {
                var mine = tensor(layout.Positions(r).Select(p => (long)p).ToArray());
                for (int s = 0; s < steps; s++)
                {
                    using var v1 = inputs[s].Item1.index_select(0, mine);
                    using var v2 = inputs[s].Item2.index_select(0, mine);
                    steppers[r].Run(v1, v2, group[r], layout, 0, s, s, 0.05);
                    afterStep(steppers[r]);
                }
            }
            threads.ForEach(t => t.Start());
            threads.ForEach(t => t.Join());
            foreach (var e in errors)
            {
                if (e is not null)
                {
                    throw new AggregateException(e);
                }
            }
            var reference = models[0].state_dict().ToList();
            foreach (var other in models.Skip(1))
            {
                var theirs = other.state_dict();
                foreach (var (name, t) in reference)
                {
                    Assert.True(t.eq(theirs[name]).all().item<bool>(), $"replicas disagree on {name}");
                }
            }
            return reference.Select(p => new KeyValuePair<string, Tensor>(p.Key, p.Value.clone())).ToList();
        }
        finally
        {
            models.ForEach(m => m.Dispose());
        }
    }

    [Theory]
    [InlineData(2, false, false)]
    [InlineData(3, false, false)] // 4 BN groups over 3 workers: shares of 1, 1 and 2 groups
    [InlineData(4, false, false)]
    [InlineData(2, true, false)]
    [InlineData(2, false, true)]
    [InlineData(3, true, true)]
    public void World_of_W_workers_computes_the_same_steps_as_one(int worldSize, bool symmetric, bool bucketed)
    {
        const int steps = 5;
        var one = Train(1, symmetric, steps);
        // 4 KiB buckets: the tiny encoder's 17 segments make several buckets, each overlapped with backward
        var many = Train(worldSize, symmetric, steps, bucketed ? new GradientBucketing(4.0 / 1024) : GradientBucketing.Off).ToDictionary(p => p.Key, p => p.Value);
        double worst = 0;
        string worstName = "";
        foreach (var (name, t) in one)
        {
            if (!t.is_floating_point())
            {
                Assert.True(t.eq(many[name]).all().item<bool>(), $"{name} differs");
                continue;
            }
            double diff = t.sub(many[name]).abs().max().item<double>();
            if (diff > worst)
            {
                worst = diff;
                worstName = name;
            }
        }
        // float64 with sums in another order (per-worker partial sums, then the all-reduce): the only
        // difference is rounding, about 1e-16 relative per operation; 1e-9 absolute leaves room for 5 steps
        Assert.True(worst < 1e-9, $"largest difference {worst:E2} in {worstName}");
    }
}
