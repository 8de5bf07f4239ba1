using System.Globalization;
using Akka.Actor;
using Akka.Event;
using System.Net;
using MoCo.Actors.Collectives;
using MoCo.Actors.Collectives.Nccl;
using MoCo.Model.Collectives;
using MoCo.Model.Training;

namespace MoCo.Actors.Workers;

/// <summary>A worker's part in forming a generation: its data-plane preparation (a listener, or NCCL's unique id) and its join.</summary>
public sealed partial class WorkerActor
{
    private void HandlePrepareGeneration(Worker.PrepareGeneration prepare)
    {
        try
        {
            _listener?.Dispose();
            _listener = null;
            if (_settings.Backend == DataPlaneKind.Nccl)
            {
                // rank 0 names the communicator (ncclGetUniqueId opens its bootstrap socket in this process); the
                // director forwards the id to every rank in JoinGeneration
                var id = prepare.Rank == 0 ? _settings.Nccl.CreateUniqueId().ToArray() : null;
                Sender.Tell(new Worker.Prepared(prepare.Rank, prepare.Generation, null, DataPlaneKind.Nccl, id));
                return;
            }

            _listener = TcpRingListener.Bind(new IPEndPoint(IPAddress.Parse(_settings.DataPlane.BindAddress), _settings.DataPlane.Port));
            var endpoint = $"{_settings.DataPlane.AdvertisedHost}:{_listener.EndPoint.Port.ToString(CultureInfo.InvariantCulture)}";
            Sender.Tell(new Worker.Prepared(prepare.Rank, prepare.Generation, endpoint));
        }
        catch (Exception e)
        {
            Fail(Sender, "binding the data plane", e);
        }
    }

    private void HandleJoinGeneration(Worker.JoinGeneration join)
    {
        if (_trainer is null)
        {
            Sender.Tell(Failure("joining a generation", "the worker failed to start and holds no model"));
            return;
        }

        try
        {
            _rank = join.Rank;
            _network?.Dispose();
            _network = null;
            ICollective collective;
            if (join.NcclUniqueId is { } uniqueId)
            {
                _listener?.Dispose();
                _listener = null;
                _network = _settings.Nccl.Join(join.Rank, join.WorldSize, NcclUniqueId.FromBytes(uniqueId), _localSlot, _settings.CollectiveTimeout);
                collective = _network;
            }
            else if (join.Endpoints is { } endpoints)
            {
                var listener = _listener ?? throw new InvalidOperationException($"generation {join.Generation}: the data plane was not prepared (no PrepareGeneration)");
                _listener = null; // Connect takes it over
                var options = new TcpRingOptions(join.Rank, endpoints.Select(TcpRingOptions.ParseEndpoint).ToList(), _settings.RunId, join.Generation, _settings.DataPlane.Secret)
                {
                    ConnectTimeout = _settings.DataPlane.ConnectTimeout,
                    OperationTimeout = _settings.CollectiveTimeout,
                    Protection = _settings.DataPlane.Protection,
                };
                if (options.Protection == DataPlaneProtection.None)
                {
                    _log.Warning("Rank {0}: the TCP ring of generation {1} is unprotected ({2} = none): tensors travel in the clear with no integrity check; use it only to benchmark",
                        join.Rank, join.Generation, DataPlaneProtections.SettingKey);
                }

                _network = TcpRingCollective.Connect(listener, options);
                collective = _network;
            }
            else
            {
                collective = (_group ?? throw new InvalidOperationException("an in-process generation needs the in-process group")).Member(join.Rank, join.Generation);
            }

            if (_trainer.Device is not null && join.NcclUniqueId is null && join.WorldSize > 1)
            {
                // the in-process group and the TCP ring move host memory: stage the device's tensors through it
                collective = new HostStagedCollective(collective);
            }

            if (_settings.WrapCollective is { } wrap)
            {
                collective = wrap(_rank, collective);
            }

            var config = _settings.Config;
            _trainer.Rebind(collective, new BatchLayout(config.BatchSize, config.BnSplits, collective.WorldSize));
            _generation = join.Generation;
            _worldSize = join.WorldSize;
            if (join.SourceRank >= 0)
            {
                _trainer.SyncFrom(join.SourceRank);
                _log.Info("Rank {0} took the state of rank {1} in generation {2}: step {3}", _rank, join.SourceRank, join.Generation, _trainer.GlobalStep);
                if (_recentFirst + _recentLosses.Count != _trainer.GlobalStep)
                {
                    _recentLosses.Clear(); // another replica's past: these losses no longer end where the state does
                }
            }

            Sender.Tell(new Worker.Joined(_rank, join.Generation, _trainer.GlobalStep, _trainer.Epoch, _trainer.StepInEpoch));
        }
        catch (Exception e)
        {
            Fail(Sender, "joining a generation", e);
        }
    }
}
