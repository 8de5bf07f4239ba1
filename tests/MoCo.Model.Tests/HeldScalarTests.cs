using MoCo.Model.Nn;
using MoCo.Model.Training;
using static TorchSharp.torch;

namespace MoCo.Model.Tests;

/// <summary>
/// The optimizer step and the momentum update (every number they hand libtorch held for the call, <see cref="HeldScalar"/>)
/// on two threads while a third collects garbage without pause: no call fails, and both threads end bit for bit where one
/// thread without collections ends. With the numbers passed as TorchSharp's temporaries (<c>alpha: -lr</c>) the same
/// loop failed in 3 runs of 3 (a temporary finalized while libtorch read it). The models are built before the collections
/// start and the test runs alone (<see cref="CollectingCollection"/>): code that still makes temporaries (model
/// construction, other tests) must not run during the collections.
/// </summary>
[Collection(CollectingCollection.Name)]
public sealed class HeldScalarTests
{
    private const int Iterations = 20000;

    [Fact]
    public void The_update_computes_the_same_under_collections_on_other_threads()
    {
        using var expected = Train(threads: 1, collections: false)[0];
        var results = Train(threads: 2, collections: true);
        try
        {
            foreach (var actual in results)
            {
                Assert.True(actual.equal(expected).all().item<bool>(), "an update under collections differs from the one without");
            }
        }
        finally
        {
            results.ForEach(r => r.Dispose());
        }
    }

    /// <summary>The parameters after <see cref="Iterations"/> SGD steps and momentum updates on each of <paramref name="threads"/> threads.</summary>
    private static List<Tensor> Train(int threads, bool collections)
    {
        var spec = new EncoderSpec("resnet18", 4, Stem.Cifar, 8, false, 1);
        var replicas = Enumerable.Range(0, threads).Select(_ =>
        {
            var model = new MomentumContrast(() => new ResNet(spec), new MocoSettings(8, 16, 0.99, 0.1, false), 3);
            model.UseFlatParameters();
            var sgd = new Sgd(model.EncoderQ.named_parameters().Select(p => (p.name, p.parameter)), 0.9, 5e-4);
            sgd.UseFlat(model.FlatQ!);
            model.FlatQ!.Grad!.fill_(HeldScalar.One);
            return (Model: model, Sgd: sgd);
        }).ToList();

        var errors = new List<Exception>();
        using var stop = new CancellationTokenSource();
        var collector = new Thread(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                GC.Collect(0); // the temporaries are young: a gen-0 collection finds them
                GC.WaitForPendingFinalizers();
            }
        });
        var workers = replicas.Select(replica => new Thread(() =>
        {
            try
            {
                for (int i = 0; i < Iterations; i++)
                {
                    replica.Sgd.Step(0.03 * (1 + i % 7));
                    replica.Model.MomentumUpdate();
                }
            }
            catch (Exception e)
            {
                lock (errors)
                {
                    errors.Add(e);
                }
            }
        })).ToList();
        if (collections)
        {
            collector.Start();
        }

        workers.ForEach(w => w.Start());
        workers.ForEach(w => w.Join());
        stop.Cancel();
        if (collections)
        {
            collector.Join();
        }

        try
        {
            Assert.True(errors.Count == 0, $"{errors.Count} thread(s) failed: {errors.FirstOrDefault()?.Message}");
            return [.. replicas.Select(r => cat([r.Model.FlatQ!.Data, r.Model.FlatK!.Data]))];
        }
        finally
        {
            foreach (var (model, sgd) in replicas)
            {
                sgd.Dispose();
                model.Dispose();
            }
        }
    }
}

/// <summary>Tests that collect garbage without pause on a thread of their own run in this collection, never beside others.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class CollectingCollection
{
    /// <summary>The collection's name.</summary>
    public const string Name = "collecting";
}
