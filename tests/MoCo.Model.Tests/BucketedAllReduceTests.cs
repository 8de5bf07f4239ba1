using MoCo.Model.Collectives;
using MoCo.Model.Nn;
using MoCo.Model.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MoCo.Model.Tests;

/// <summary>Gradient bucketing: the tap order it relies on, and that it changes neither the math nor the step's atomicity.</summary>
public class BucketedAllReduceTests
{
    private const int Batch = 16;
    private const int Groups = 4;

    /// <summary>4 KiB buckets: the tiny float64 encoder (17 segments) makes several of them.</summary>
    private static readonly GradientBucketing Small = new(4.0 / 1024);

    [Theory]
    [InlineData(1, Precision.Fp32)]
    [InlineData(2, Precision.Fp32)] // two forwards through the encoder, as the symmetric loss does
    [InlineData(2, Precision.Bf16Mixed)]
    public void Tap_fires_only_when_every_gradient_of_the_later_segments_is_final(int passes, Precision precision)
    {
        using var encoder = new ResNet(TinyModels.Spec(groups: 2), precision);
        encoder.ResetParameters(new Generator(3));
        encoder.train();
        var tap = new RecordingTap(encoder);
        encoder.SegmentTap = tap;
        Loss(encoder, passes).backward();
        encoder.SegmentTap = null;
        Assert.Null(tap.Error);

        var segments = encoder.Segments;
        Assert.Equal(segments.Count - 1, tap.Snapshots.Count); // every tap fired, once all its passes were through
        foreach (var (segment, grads) in tap.Snapshots)
        {
            var later = segments.Skip(segment).SelectMany(p => p).ToList();
            Assert.Equal(later.Count, grads.Count);
            for (int i = 0; i < later.Count; i++)
            {
                Assert.True(grads[i] is not null, $"tap {segment}: parameter {i} of the later segments had no gradient yet");
                Assert.True(BitEqual(grads[i]!, later[i].grad!), $"tap {segment}: parameter {i} of the later segments changed after the tap");
            }
        }
        // and the taps fire early enough to be useful: the stem's gradient does not exist yet at any tap
        Assert.All(tap.StemHadGradient, had => Assert.False(had));
    }

    [Fact]
    public void Taps_leave_every_gradient_bit_identical()
    {
        using var encoder = new ResNet(TinyModels.Spec(groups: 2));
        encoder.ResetParameters(new Generator(3));
        encoder.train();
        Loss(encoder, 2).backward();
        var plain = encoder.parameters().Select(p => p.grad!.clone()).ToList();
        foreach (var p in encoder.parameters())
        {
            p.grad!.zero_();
        }
        encoder.SegmentTap = new RecordingTap(encoder);
        Loss(encoder, 2).backward();
        encoder.SegmentTap = null;
        var tapped = encoder.parameters().Select(p => p.grad!).ToList();
        for (int i = 0; i < plain.Count; i++)
        {
            Assert.True(BitEqual(plain[i], tapped[i]), $"parameter {i}'s gradient changed with taps");
        }
    }

    [Fact]
    public void Plan_cuts_buckets_along_segments_in_backward_order()
    {
        using var model = TinyModels.Moco(groups: Groups);
        using var sgd = new Sgd(model.EncoderQ.named_parameters().Select(p => ("encoder_q." + p.name, p.parameter)), 0.9, 0);
        var step = new MocoTrainStep(model, sgd, 7, new GradientBucketing(1.0 / 1024));
        var plan = step.BucketPlan();
        var parameters = sgd.Parameters.Select(p => (Tensor)p.Param).ToList();
        var segmentOf = new Dictionary<Tensor, int>(ReferenceEqualityComparer.Instance);
        var segments = model.EncoderQ.Segments;
        for (int s = 0; s < segments.Count; s++)
        {
            foreach (var p in segments[s])
            {
                segmentOf[p] = s;
            }
        }
        Assert.True(plan.Buckets.Count >= 3, $"only {plan.Buckets.Count} buckets of 1 KiB");
        // every parameter exactly once; buckets in decreasing segment order; the stem last, after backward
        var all = plan.Buckets.SelectMany(b => b).Concat(plan.Final).ToList();
        Assert.Equal(Enumerable.Range(0, parameters.Count), all.Order());
        for (int b = 0; b < plan.Buckets.Count; b++)
        {
            var inBucket = plan.Buckets[b].Select(i => segmentOf[parameters[i]]).ToList();
            Assert.Equal(plan.FirstSegments[b], inBucket.Min());
            Assert.True(plan.BucketBytes[b] >= 1024);
            if (b > 0)
            {
                Assert.True(inBucket.Max() < plan.FirstSegments[b - 1], "buckets overlap in segments");
            }
        }
        Assert.Contains(plan.Final, i => segmentOf[parameters[i]] == 0);
        Assert.DoesNotContain(plan.Final, i => segmentOf[parameters[i]] >= plan.FirstSegments[^1]);
    }

    [Theory]
    [InlineData(2, false)]
    [InlineData(3, true)]
    public void Bucketed_all_reduce_gives_bit_identical_steps_to_the_flat_one(int worldSize, bool symmetric)
    {
        // InProcessGroup sums each element over the ranks in rank order, whichever tensor it sits in, so cutting the
        // flat tensor into buckets changes no rounding: the steps must agree exactly, overlapped or not
        const int steps = 3;
        var flat = WorldSizeInvarianceTests.Train(worldSize, symmetric, steps, GradientBucketing.Off);
        int overlapped = int.MaxValue;
        var overlapping = WorldSizeInvarianceTests.Train(worldSize, symmetric, steps, Small, s => Interlocked.Exchange(ref overlapped, Math.Min(overlapped, s.LastBucketsDuringBackward)));
        var afterBackward = WorldSizeInvarianceTests.Train(worldSize, symmetric, steps, Small with { Overlap = false });
        AssertIdentical(flat, overlapping);
        AssertIdentical(flat, afterBackward);
        Assert.True(overlapped >= 3, $"only {overlapped} buckets went out during backward");
    }

    [Fact]
    public void Failed_bucket_all_reduce_during_backward_leaves_the_state_unchanged_and_the_redone_step_matches()
    {
        using var reference = new Replicas(2);
        using var flaky = new Replicas(2);
        for (int s = 0; s < 2; s++)
        {
            using var group = new InProcessGroup(2, TimeSpan.FromSeconds(60));
            Assert.All(reference.Step(s, [group[0], group[1]]), e => Assert.Null(e));
        }

        using (var first = new InProcessGroup(2, TimeSpan.FromSeconds(60)))
        {
            Assert.All(flaky.Step(0, [first[0], first[1]]), e => Assert.Null(e));
        }
        var before = Enumerable.Range(0, 2).Select(flaky.State).ToList();
        using (var broken = new InProcessGroup(2, TimeSpan.FromSeconds(60)))
        {
            var failing = new FailingCollective(broken[1], broken, failOnReduceCall: 2);
            var errors = flaky.Step(1, [broken[0], failing]);
            Assert.All(errors, e => Assert.IsType<CollectiveException>(e));
            Assert.Equal("gradient-buckets-1", failing.FailedOnThread); // a bucket in flight during backward
        }
        for (int r = 0; r < 2; r++)
        {
            AssertIdentical(before[r], flaky.State(r));
        }
        using (var regrouped = new InProcessGroup(2, TimeSpan.FromSeconds(60)))
        {
            Assert.All(flaky.Step(1, [regrouped[0], regrouped[1]]), e => Assert.Null(e)); // redone
        }
        for (int r = 0; r < 2; r++)
        {
            AssertIdentical(reference.State(r), flaky.State(r));
        }
    }

    private static Tensor Loss(ResNet encoder, int passes)
    {
        var g = new Generator(11);
        var dtype = encoder.parameters().First().dtype;
        var weights = randn(8, 8, dtype: dtype, generator: g);
        Tensor? loss = null;
        for (int p = 0; p < passes; p++)
        {
            var x = randn(8, 3, 8, 8, dtype: dtype, generator: g);
            var term = encoder.forward(x).mul(weights).sum();
            loss = loss is null ? term : loss + term;
        }
        return loss!;
    }

    /// <summary>Same shape, dtype and bytes.</summary>
    private static bool BitEqual(Tensor a, Tensor b)
        => a.dtype == b.dtype && a.shape.SequenceEqual(b.shape) && a.contiguous().bytes.SequenceEqual(b.contiguous().bytes);

    private static void AssertIdentical(IReadOnlyList<KeyValuePair<string, Tensor>> expected, IReadOnlyList<KeyValuePair<string, Tensor>> actual)
    {
        var theirs = actual.ToDictionary(p => p.Key, p => p.Value);
        Assert.Equal(expected.Count, theirs.Count);
        foreach (var (name, t) in expected)
        {
            Assert.True(BitEqual(t, theirs[name]), $"{name} differs");
        }
    }

    /// <summary>Taps every segment and, when a tap's last node runs, copies the gradients of its segment and all later ones.</summary>
    private sealed class RecordingTap(ResNet encoder) : ISegmentTap
    {
        private readonly Dictionary<int, int> _passes = [];
        private readonly Dictionary<int, int> _fired = [];

        public List<(int Segment, List<Tensor?> Grads)> Snapshots { get; } = [];

        public List<bool> StemHadGradient { get; } = [];

        /// <summary>What the callback threw (an exception must not cross into the autograd engine).</summary>
        public Exception? Error { get; private set; }

        public Tensor Tap(int segment, Tensor input)
        {
            _passes[segment] = _passes.GetValueOrDefault(segment) + 1;
            return GradientTapFunction.Apply(input, () =>
            {
                try
                {
                    Fired(segment);
                }
                catch (Exception e)
                {
                    Error ??= e;
                }
            });
        }

        private void Fired(int segment)
        {
            _fired[segment] = _fired.GetValueOrDefault(segment) + 1;
            if (_fired[segment] != _passes[segment])
            {
                return;
            }
            var segments = encoder.Segments;
            var grads = segments.Skip(segment).SelectMany(p => p).Select(p => p.grad?.clone()).ToList();
            Snapshots.Add((segment, grads));
            StemHadGradient.Add(segments[0].Any(p => p.grad is not null && p.grad.abs().sum().ToDouble() != 0));
        }
    }

    /// <summary>Passes through, except that its n-th all-reduce aborts the group and fails, like a peer dying.</summary>
    private sealed class FailingCollective(ICollective inner, InProcessGroup group, int failOnReduceCall) : ICollective
    {
        private int _calls;

        public string? FailedOnThread { get; private set; }

        public int Rank => inner.Rank;

        public int WorldSize => inner.WorldSize;

        public void AllReduceSum(Tensor tensor)
        {
            if (++_calls == failOnReduceCall)
            {
                FailedOnThread = Thread.CurrentThread.Name;
                group.Abort();
                throw new CollectiveException($"rank {Rank}: peer 0 stopped answering");
            }
            inner.AllReduceSum(tensor);
        }

        public Tensor AllGather(Tensor local, IReadOnlyList<long> counts) => inner.AllGather(local, counts);

        public void Broadcast(Tensor tensor, int root) => inner.Broadcast(tensor, root);

        public void Dispose()
        {
        }
    }

    /// <summary>W float64 replicas with bucketed, overlapped steps, fed fixed global batches.</summary>
    private sealed class Replicas : IDisposable
    {
        private readonly BatchLayout _layout;
        private readonly List<MomentumContrast> _models = [];
        private readonly List<Sgd> _optimizers = [];
        private readonly List<MocoTrainStep> _steps = [];

        public Replicas(int worldSize)
        {
            _layout = new BatchLayout(Batch, Groups, worldSize);
            var spec = new EncoderSpec("resnet18", 4, Stem.Cifar, 8, false, Groups);
            for (int r = 0; r < worldSize; r++)
            {
                var model = new MomentumContrast(() => new ResNet(spec), new MocoSettings(8, 40, 0.99, 0.1, true), 7);
                model.to(ScalarType.Float64);
                var sgd = new Sgd(model.EncoderQ.named_parameters().Select(p => ("encoder_q." + p.name, p.parameter)), 0.9, 5e-4);
                _models.Add(model);
                _optimizers.Add(sgd);
                _steps.Add(new MocoTrainStep(model, sgd, 7, Small));
            }
        }

        /// <summary>Runs step <paramref name="s"/> on every rank's thread; returns each rank's exception, if any.</summary>
        public Exception?[] Step(int s, ICollective[] collectives)
        {
            var g = new Generator((ulong)(100 + s));
            var v1 = randn(Batch, 3, 8, 8, dtype: ScalarType.Float64, generator: g);
            var v2 = randn(Batch, 3, 8, 8, dtype: ScalarType.Float64, generator: g);
            var errors = new Exception?[collectives.Length];
            var threads = Enumerable.Range(0, collectives.Length).Select(r => new Thread(() =>
            {
                try
                {
                    var mine = tensor(_layout.Positions(r).Select(p => (long)p).ToArray());
                    _steps[r].Run(v1.index_select(0, mine), v2.index_select(0, mine), collectives[r], _layout, 0, s, s, 0.05);
                }
                catch (Exception e)
                {
                    errors[r] = e;
                }
            })).ToList();
            threads.ForEach(t => t.Start());
            threads.ForEach(t => t.Join());
            return errors;
        }

        /// <summary>Rank <paramref name="r"/>'s whole state: model, queue and pointer, BN buffers, momentum, gradients.</summary>
        public List<KeyValuePair<string, Tensor>> State(int r)
        {
            var state = _models[r].state_dict().Select(p => new KeyValuePair<string, Tensor>(p.Key, p.Value.clone())).ToList();
            state.AddRange(_optimizers[r].StateTensors().Select(p => new KeyValuePair<string, Tensor>(p.Key, p.Value.clone())));
            return state;
        }

        public void Dispose()
        {
            _models.ForEach(m => m.Dispose());
            _optimizers.ForEach(o => o.Dispose());
        }
    }
}
