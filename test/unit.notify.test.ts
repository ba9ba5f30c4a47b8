import { describe, expect, it } from 'vitest';
import { noticeMessage, type NoticeContent } from '../workflow/notify.message.ts';
import {
  judgeAnswer,
  maskWebhook,
  MESSAGE_MAX_BYTES,
  quietUntil,
  robotRequest,
  webhookProblem,
} from '../workflow/notify.robots.ts';

describe('group robot messages', () => {
  it('holds messages in quiet hours until they end, across midnight, in city time', () => {
    const at = (iso: string) => new Date(iso);
    // 22:00-07:30 in UTC+8: 23:10 city time is 15:10 UTC; the quiet ends at 07:30 city time, 23:30 UTC
    expect(quietUntil('22:00-07:30', at('2026-12-06T15:10:00Z'), 8)?.toISOString()).toBe('2026-12-06T23:30:00.000Z');
    expect(quietUntil('22:00-07:30', at('2026-12-06T21:00:00Z'), 8)?.toISOString()).toBe('2026-12-06T23:30:00.000Z'); // 05:00
    expect(quietUntil('22:00-07:30', at('2026-12-06T23:30:00Z'), 8)).toBeNull(); // 07:30 exactly: no longer quiet
    expect(quietUntil('22:00-07:30', at('2026-12-06T04:00:00Z'), 8)).toBeNull(); // 12:00
    expect(quietUntil('12:00-13:30', at('2026-12-06T04:30:00Z'), 8)?.toISOString()).toBe('2026-12-06T05:30:00.000Z');
    expect(quietUntil('none', at('2026-12-06T15:10:00Z'), 8)).toBeNull();
    // New Year's Eve: the quiet spans into the next year
    expect(quietUntil('22:00-07:30', at('2026-12-31T15:00:00Z'), 8)?.toISOString()).toBe('2026-12-31T23:30:00.000Z');
  });

  it('reads the robot’s answer, not only its status: errcode 0 sent, rate limits and 5xx retried, the rest refused', () => {
    expect(judgeAnswer(200, '{"errcode":0,"errmsg":"ok"}')).toEqual({ outcome: 'sent' });
    expect(judgeAnswer(200, '{"errcode":93000,"errmsg":"invalid webhook url"}').outcome).toBe('refused');
    expect(judgeAnswer(200, '{"errcode":310000,"errmsg":"sign not match"}').outcome).toBe('refused');
    expect(judgeAnswer(200, '{"errcode":45009,"errmsg":"api freq out of limit"}').outcome).toBe('retry');
    expect(judgeAnswer(200, '{"errcode":130101,"errmsg":"send too fast"}').outcome).toBe('retry');
    expect(judgeAnswer(502, 'bad gateway').outcome).toBe('retry');
    expect(judgeAnswer(429, '').outcome).toBe('retry');
    expect(judgeAnswer(404, 'not found').outcome).toBe('refused');
    expect(judgeAnswer(200, '<html>captive portal</html>').outcome).toBe('retry');
  });

  it('signs 钉钉 requests when sent and leaves 企业微信 webhooks as they are', () => {
    const msg = { title: 't', markdown: 'm' };
    const ding = robotRequest(
      'dingtalk',
      'https://oapi.dingtalk.com/robot/send?access_token=abc',
      'SECx',
      msg,
      1700000000000,
    );
    const u = new URL(ding.url);
    expect(u.searchParams.get('access_token')).toBe('abc');
    expect(u.searchParams.get('timestamp')).toBe('1700000000000');
    expect(u.searchParams.get('sign')).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    expect(JSON.parse(ding.body)).toEqual({ msgtype: 'markdown', markdown: { title: 't', text: 'm' } });
    const wecom = robotRequest('wecom', 'https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k', null, msg);
    expect(wecom.url).toBe('https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k');
    expect(JSON.parse(wecom.body)).toEqual({ msgtype: 'markdown', markdown: { content: 'm' } });
  });

  it('refuses webhooks that are not https (but for this machine) and never shows their keys', () => {
    expect(webhookProblem('https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k')).toBeNull();
    expect(webhookProblem('http://127.0.0.1:9000/relay')).toBeNull();
    expect(webhookProblem('http://10.0.0.8/relay')?.key).toBe('notify_webhook_http');
    expect(webhookProblem('file:///etc/passwd')?.key).toBe('notify_webhook_scheme');
    expect(webhookProblem('https://u:p@example.com/')?.key).toBe('notify_webhook_userinfo');
    expect(webhookProblem('not a url')?.key).toBe('notify_webhook_not_url');
    expect(
      maskWebhook('https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa'),
    ).toBe('https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=****5aaa');
  });

  it('cuts a digest of a thousand patches to the robots’ size limit, saying how many more there are', () => {
    const c: NoticeContent = {
      event: 'dispatched',
      date: '2026-12-07',
      by: 'ana',
      towns: Array.from({ length: 10 }, (_, t) => ({
        code: `35020600${t}`,
        name: `第${t}街道`,
        items: Array.from({ length: 100 }, (_, i) => ({
          code: `350206-202612-${String(t * 100 + i + 1).padStart(4, '0')}`,
          area_m2: 120.4,
          due: '2026-12-14',
        })),
      })),
    };
    const m = noticeMessage(c, { publicUrl: 'https://tuban.example.gov.cn/' });
    expect(Buffer.byteLength(m.markdown)).toBeLessThanOrEqual(MESSAGE_MAX_BYTES);
    expect(m.title).toBe('新下发图斑 1000 个，请按期到现场核查');
    const listed = (m.markdown.match(/\[350206-202612-\d{4}\]\(https:\/\/tuban\.example\.gov\.cn\/#\/patch\//g) ?? [])
      .length;
    expect(listed).toBeGreaterThan(10);
    expect(m.markdown).toContain(`另有 ${1000 - listed} 个`);
    expect(m.markdown).toContain('[打开待办](https://tuban.example.gov.cn/#/todo)');
    // without a public address: codes, no links
    expect(noticeMessage(c).markdown).not.toContain('](');
  });
});
